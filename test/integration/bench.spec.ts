import { execFile } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS } from '../helpers/kafka';

/**
 * `npm run bench` at a tiny size: the harness keeps working and its JSON keeps every figure the
 * issue asks for. No timing is asserted (figures live in BENCHMARKS.md, measured on purpose).
 */
describe('bench harness (tiny run)', () => {
  it('prints one JSON object with every figure, and its accounting holds: each published event in the ledger once', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [path.join(PROJECT_ROOT, 'bin', 'meterline-bench'), '--events', '2000', '--customers', '50', '--rate', '1000', '--latency-seconds', '2'],
        { cwd: PROJECT_ROOT, timeout: BROKER_BUILD_TIMEOUT_MS, maxBuffer: 10 * 1024 * 1024 },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut.slice(-2000)}`)) : resolve(out)),
      );
    });
    const r = JSON.parse(stdout) as Record<string, unknown> & {
      latency: Record<string, number | null> & { termStart: { firstCycleMs: number | null; eventsAfter: number; p99AfterMs: number | null } };
      peakRssMiB: Record<string, number>;
      memoryMiB: { peakAnonMiB: number; peakAnonByPhaseMiB: { throughput: number; pushDrain: number; latency: number } };
      totals: { consumed: number; accepted: number; duplicates: number };
      pipelineEventsPerSecondByQuarter: number[];
      rssAtProgressMiB: number[];
      pipelineEventsPerSecondByDecile: number[];
      gateway: { gatewaySingleEventsPerSecond: number; gatewayBatchedEventsPerSecond: number; gatewayEventsAccepted: number };
      alerts: { alertCrossings: number; alertsReceived: number; alertLatencyP50Ms: number | null };
    };
    for (const field of ['events', 'customers', 'meters', 'partitions', 'duplicates', 'late', 'pipelineEventsPerSecond', 'baselineEventsPerSecond', 'ratio', 'stripeCallsPerMillionEvents', 'loadAverageAtStart', 'commit', 'breakdownSeconds', 'gateway']) {
      expect(r).toHaveProperty(field);
    }
    expect(r.events).toBe(2000);
    expect(r.accountingOk).toBe(true);
    expect(r.totals.consumed).toBe(2000);
    expect(r.totals.accepted + r.totals.duplicates).toBe(2000);
    expect(r.pipelineEventsPerSecond).toBeGreaterThan(0);
    expect(r.baselineEventsPerSecond).toBeGreaterThan(0);
    expect(r.pipelineEventsPerSecondByQuarter).toHaveLength(4);
    expect(r.pipelineEventsPerSecondByDecile).toHaveLength(10);
    // HTTP ingest beside the Kafka path: 200 single-event requests and 4 of 500 events, all acknowledged.
    expect(r.gateway.gatewayEventsAccepted).toBe(200 + 4 * 500);
    expect(r.gateway.gatewaySingleEventsPerSecond).toBeGreaterThan(0);
    expect(r.gateway.gatewayBatchedEventsPerSecond).toBeGreaterThan(0);
    // Allotment crossings during the offered load: every one alerted, its latency measured.
    expect(r.alerts.alertsReceived).toBe(r.alerts.alertCrossings);
    expect(r.alerts.alertCrossings).toBeGreaterThan(0);
    expect(r.alerts.alertLatencyP50Ms).not.toBeNull();
    expect(r.rssAtProgressMiB).toHaveLength(4);
    expect(r.latency.published).toBe(2000);
    expect(r.latency.p50Ms).not.toBeNull();
    expect(r.latency.p99Ms!).toBeGreaterThanOrEqual(r.latency.p50Ms!);
    // The term's first push cycle (2,000 events of history: milliseconds) ends within the phase;
    // the events published after it are a part of those measured, none slower than the slowest.
    const term = r.latency.termStart;
    expect(term.firstCycleMs).not.toBeNull();
    expect(term.eventsAfter).toBeGreaterThan(0);
    expect(term.eventsAfter).toBeLessThanOrEqual(r.latency.measured!);
    expect(term.p99AfterMs!).toBeLessThanOrEqual(r.latency.maxMs!);
    expect(r.peakRssMiB.pipelineWorker).toBeGreaterThan(0);
    // Where the peak is: each phase's own highest anonymous RSS, the run's peak among them (Linux).
    const phases = r.memoryMiB.peakAnonByPhaseMiB;
    for (const phase of [phases.throughput, phases.pushDrain, phases.latency]) expect(phase).toBeGreaterThan(0);
    expect(Math.max(phases.throughput, phases.pushDrain, phases.latency)).toBe(r.memoryMiB.peakAnonMiB);
    expect(r.stripeCalls as number).toBeGreaterThan(0);
  }, BROKER_BUILD_TIMEOUT_MS);

  it('--plan-cycle N plans a full push cycle of N delta and N absolute streams with nothing new, and prints one JSON line', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'meterline-bench'), '--plan-cycle', '1000'], { cwd: PROJECT_ROOT, timeout: 60_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut.slice(-2000)}`)) : resolve(out),
      );
    });
    // (The harness itself fails unless every one of the streams is planned as "nothing".)
    expect(JSON.parse(stdout)).toEqual({ benchmark: 'plan-cycle', streams: 2000, medianMs: expect.any(Number), fastestMs: expect.any(Number), microsecondsPerStream: expect.any(Number) });
  });

  it('--ledger-insert UNITS measures ledger INSERTs per projection: by_ingested and the old `last` aggregate show in the ledger size', async () => {
    const run = (...flags: string[]) =>
      new Promise<{ rows: number; without: string[]; lastBefore: boolean; insertMsPerUnit: number; cpuSecondsPerMillionRows: number; diskMBPerMillionRows: number }>((resolve, reject) => {
        execFile(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'meterline-bench'), '--ledger-insert', '2', ...flags], { cwd: PROJECT_ROOT, timeout: 120_000 }, (err, out, errOut) =>
          err ? reject(new Error(`${err.message}\n${errOut.slice(-2000)}`)) : resolve(JSON.parse(out)),
        );
      });
    const today = await run();
    expect(today).toMatchObject({ rows: 50_000, without: [], lastBefore: false });
    expect(today.insertMsPerUnit).toBeGreaterThan(0);
    expect(today.cpuSecondsPerMillionRows).toBeGreaterThan(0);
    // Sizes, not times (this machine is shared): the keys projection and the tuple argMax states take room.
    const withoutKeys = await run('--without', 'by_ingested');
    expect(withoutKeys.without).toEqual(['by_ingested']);
    expect(withoutKeys.diskMBPerMillionRows).toBeLessThan(today.diskMBPerMillionRows * 0.9);
    const lastBefore = await run('--last-before');
    expect(lastBefore.lastBefore).toBe(true);
    expect(lastBefore.diskMBPerMillionRows).toBeGreaterThan(today.diskMBPerMillionRows * 1.05);
  }, 300_000);

  it('--alert-cycle STREAMS times an alert cycle against the whole-period read it replaced, and both give the same totals', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'meterline-bench'), '--alert-cycle', '200'], { cwd: PROJECT_ROOT, timeout: 120_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut.slice(-2000)}`)) : resolve(out),
      );
    });
    const r = JSON.parse(stdout);
    // The harness exits 1 unless the cycle's totals equal the whole-period read's.
    expect(r).toMatchObject({ benchmark: 'alert-cycle', streams: 200, sameTotals: true });
    // 5 and 25 days of hourly events before the split, plus the last hour's: rows as built.
    expect(r.byHistoryDays.map((d: { days: number; ledgerRows: number }) => [d.days, d.ledgerRows])).toEqual([
      [5, (5 * 24 + 1) * 200],
      [25, (25 * 24 + 1) * 200],
    ]);
    for (const d of r.byHistoryDays) for (const k of ['wholePeriodMs', 'termStartMs', 'cycleMs']) expect(d[k]).toBeGreaterThan(0);
  }, 180_000);
});
