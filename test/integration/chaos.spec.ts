import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Kafka, Producer } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { floorUnits, formatDecimal, parseDecimal } from '../../src/domain/decimal';
import { seededRandom } from '../../src/domain/sample';
import type { UsageEvent } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli } from '../helpers/cli';
import { exited, fakeStripeEnv, startWorkerProcess, waitForGroupCaughtUp, workerEnv } from '../helpers/worker-process';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

/**
 * The chaos run (issue 8): the whole pipeline — ingest, aggregate, push — in worker processes
 * that are SIGKILLed at random moments, while the dev broker answers produce, fetch, offset
 * commit and group requests with protocol errors, the ClickHouse port fails (before and after
 * doing the work) and slows down, and the fake Stripe answers 429, 500 and times out after
 * accepting. The workload has ≥ 10 % copies (some published minutes after their original,
 * across restarts), conflicting copies, late and too-late events and ≥ 1 % bad messages.
 *
 * At the end, against the ground truth: exact per-stream totals in the ledger and the counters,
 * Stripe holds exactly floor(total) per stream, every message is in exactly one place,
 * nothing is pending. CHAOS_SCALE=full (npm run chaos) runs the large size; CI runs the small one.
 */
const METER_EVENTS = '/v1/billing/meter_events';
const FULL = process.env.CHAOS_SCALE === 'full';
const SIZE = FULL ? { phases: 21, eventsPerPhase: 10_000 } : { phases: 11, eventsPerPhase: 1_200 };
const SEED = Number(process.env.CHAOS_SEED ?? 8);
const TOPIC = 'usage.events';
const GROUP = 'chaos';
const TENANTS = ['acme', 'globex'];
const CUSTOMERS = 15;
const MINUTE = 60_000;
const DAY = 86_400_000;

/** Protocol errors the dev broker injects: [api key, name, error codes it answers with]. */
const BROKER_FAULTS: [number, string, number[]][] = [
  [0, 'Produce', [6, 7]], // NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT
  [1, 'Fetch', [6]],
  [8, 'OffsetCommit', [27, 16, 15]], // REBALANCE_IN_PROGRESS, NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE
  [9, 'OffsetFetch', [14]], // COORDINATOR_LOAD_IN_PROGRESS
  [10, 'FindCoordinator', [15]],
  [11, 'JoinGroup', [15, 16]],
  [12, 'Heartbeat', [27]],
  [14, 'SyncGroup', [27]],
];

interface Truth {
  /** (tenant/id) → the first-written event (copies and conflicting copies never replace it). */
  readonly events: Map<string, UsageEvent>;
  readonly tooLate: Set<string>;
  messages: number;
  copies: number;
  conflicts: number;
  bad: number;
  late: number;
}

describe('chaos: exactly-once under kills, protocol errors, store faults and Stripe faults', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let fake: FakeStripe;
  let publisher: Publisher;
  let raw: Producer;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    broker = await startTestBroker(
      [
        { name: TOPIC, partitions: 8 },
        { name: `${TOPIC}.dlq`, partitions: 2 },
      ],
      { kind: 'kafka' },
    );
    kafka = kafkaFor(broker);
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'api_calls', formula: 'sum' });
    publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });
    raw = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await raw.connect();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-chaos-'));
    fs.writeFileSync(
      path.join(dir, 'meters.yaml'),
      [
        'meters:',
        '  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1d, stripe: { event_name: tokens } }',
        '  - { name: api_calls, aggregation: count, window: minute, allowed_lateness: 1d, stripe: { event_name: api_calls } }',
      ].join('\n'),
    );
    const mappings = TENANTS.flatMap((t) => Array.from({ length: CUSTOMERS }, (_, i) => `${t},c${i},cus_${t}${i}`));
    fs.writeFileSync(path.join(dir, 'customers.csv'), ['tenant,customer,stripe_customer_id', ...mappings].join('\n'));
    env = workerEnv(broker, GROUP, path.join(dir, 'data'), { METERS_FILE: path.join(dir, 'meters.yaml'), ...fakeStripeEnv(fake) });
    const imported = await runCli(['customers', 'import', path.join(dir, 'customers.csv')], { env });
    expect(imported.code).toBe(0);
  }, BROKER_BUILD_TIMEOUT_MS);

  const children = new Set<ChildProcess>();
  afterAll(async () => {
    // A failed run may leave workers behind: stop them before their data directory goes.
    for (const c of children) {
      c.kill('SIGKILL');
      await exited(c);
    }
    await publisher?.close();
    await raw?.disconnect();
    await fake?.close();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('ends with exact totals everywhere, every message in one place, nothing pending', async () => {
    const started = Date.now();
    const rnd = seededRandom(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const truth: Truth = { events: new Map(), tooLate: new Set(), messages: 0, copies: 0, conflicts: 0, bad: 0, late: 0 };
    const published: UsageEvent[] = [];
    let seq = 0;

    /** One phase's messages: new events (some late, some too late), copies and conflicting copies of earlier ones, bad bytes. */
    const phaseMessages = (phase: number): { events: UsageEvent[]; bad: Buffer[] } => {
      const out: UsageEvent[] = [];
      for (let i = 0; i < SIZE.eventsPerPhase; i += 1) {
        seq += 1;
        const meter = rnd() < 0.6 ? 'tokens' : 'api_calls';
        const r = rnd();
        // Too-late events only once every partition's watermark stands near now (after phase 0).
        const age = phase > 0 && r < 0.01 ? 2 * DAY + Math.floor(rnd() * DAY) : r < 0.06 ? 10 * MINUTE + Math.floor(rnd() * 20 * 60 * MINUTE) : Math.floor(rnd() * 30_000);
        const e: UsageEvent = {
          id: `ch-${seq}`,
          tenant: pick(TENANTS),
          customer: `c${Math.floor(rnd() * CUSTOMERS)}`,
          meter,
          value: meter === 'tokens' ? formatDecimal(BigInt(Math.floor(rnd() * 9_999_999)) * 1_000n) : '1', // micro-units
          timestamp: Date.now() - age,
          properties: {},
          source: null,
        };
        const key = `${e.tenant}/${e.id}`;
        truth.events.set(key, e);
        if (age >= 2 * DAY) truth.tooLate.add(key);
        else if (age >= 10 * MINUTE) truth.late += 1;
        out.push(e);
      }
      // Copies: 11 % of this phase's size, drawn from everything published so far (minutes apart,
      // across restarts) and from this phase; 0.5 % conflicting copies (same key, other value).
      const pool = [...published, ...out];
      for (let i = 0; i < Math.ceil(SIZE.eventsPerPhase * 0.11); i += 1) {
        out.push({ ...pick(pool) });
        truth.copies += 1;
      }
      for (let i = 0; i < Math.ceil(SIZE.eventsPerPhase * 0.005); i += 1) {
        const original = pick(published.length > 0 ? published : out);
        if (original.meter !== 'tokens') continue;
        out.push({ ...original, value: '0.5' });
        truth.conflicts += 1;
      }
      // Shuffle, keeping every copy after its original within a partition: originals of this
      // phase go first in their own order, then the copies in random order.
      const originals = out.slice(0, SIZE.eventsPerPhase);
      const extras = out.slice(SIZE.eventsPerPhase).sort(() => rnd() - 0.5);
      published.push(...originals);
      const bad = Array.from({ length: Math.ceil(SIZE.eventsPerPhase * 0.012) }, () => {
        const b = Buffer.alloc(1 + Math.floor(rnd() * 60));
        for (let k = 0; k < b.length; k += 1) b[k] = Math.floor(rnd() * 256);
        return b;
      });
      truth.bad += bad.length;
      truth.messages += originals.length + extras.length + bad.length;
      return { events: [...originals, ...extras], bad };
    };
    const publishPhase = async (phase: number) => {
      const { events, bad } = phaseMessages(phase);
      for (let i = 0; i < events.length; i += 2_000) await publisher.publish(events.slice(i, i + 2_000));
      await raw.send({ topic: TOPIC, acks: -1, messages: bad.map((value, i) => ({ key: `bad-${phase}-${i}`, value })) });
    };

    // Faults, all through the run.
    const faults = { broker: 0, brokerByApi: {} as Record<string, number>, brokerCrashes: 0, stripe: 0, kills: 0, selfExits: 0 };
    const stripeFaults = [
      // On meter events only: the worker's start-up check of the Stripe meters (GET /v1/billing/meters)
      // holds every meter until it succeeds, and faults queued faster than anything consumes them
      // would keep it from ever succeeding.
      () => fake.inject({ kind: 'status', status: 429, path: METER_EVENTS }),
      () => fake.inject({ kind: 'status', status: 500, path: METER_EVENTS }),
      () => fake.inject({ kind: 'status', status: 500, stage: 'after-accept', path: METER_EVENTS }),
      () => fake.inject({ kind: 'timeout-after-accept', mode: 'reset', path: METER_EVENTS }),
      () => fake.inject({ kind: 'timeout-after-accept', mode: 'truncate', path: METER_EVENTS }),
    ];
    const stripeTimer = setInterval(() => {
      pick(stripeFaults)();
      faults.stripe += 1;
    }, 200);
    // On the dev broker, one protocol error every 2.5 s: group coordination errors make kafkajs
    // restart the whole consumer (rejoin, fetch offsets), so a denser storm would only measure
    // kafkajs' back-off. Apache Kafka cannot inject them; it crashes instead (below).
    const brokerTimer = setInterval(() => {
      if (broker.kind !== 'dev') return;
      const [api, name, codes] = pick(BROKER_FAULTS);
      const count = 1;
      broker
        .command(`push_errors ${api} ${count} ${pick(codes)}`)
        .then(() => {
          faults.broker += count;
          faults.brokerByApi[name] = (faults.brokerByApi[name] ?? 0) + count;
        })
        .catch(() => undefined);
    }, 2_500);

    const workerEnv = (cycle: number): NodeJS.ProcessEnv => ({
      ...env,
      CHAOS_CLICKHOUSE_FAULTS: 'fail=0.01,fail_after=0.01,slow=0.05,slow_ms=150',
      CHAOS_SEED: String(SEED * 1000 + cycle),
      LOG_LEVEL: 'warn',
    });
    const debugLog = process.env.CHAOS_LOG ? fs.createWriteStream(process.env.CHAOS_LOG) : null;
    const storeFaults = { fail: 0, fail_after: 0, slow: 0 };
    const countStoreFaults = (d: Buffer) => {
      for (const m of d.toString().matchAll(/"kind":"(fail|fail_after|slow)"[^\n]*CHAOS: injected ClickHouse fault/g)) storeFaults[m[1] as keyof typeof storeFaults] += 1;
    };
    const start = (e: NodeJS.ProcessEnv) => {
      const c = startWorkerProcess(debugLog ? { ...e, LOG_LEVEL: 'info' } : e, (d) => {
        countStoreFaults(d);
        debugLog?.write(d);
      });
      children.add(c);
      return c;
    };
    const meterEventCalls = () => fake.calls().filter((c) => c.path === '/v1/billing/meter_events').length;

    try {
      for (let cycle = 0; cycle < SIZE.phases - 1; cycle += 1) {
        debugLog?.write(`--- cycle ${cycle}\n`);
        let worker: ChildProcess = start(workerEnv(cycle));
        await publishPhase(cycle);
        if (broker.apache && cycle % 4 === 2) {
          // Apache Kafka itself is SIGKILLed under the running worker and comes back on the same
          // log directory a second later: the worker must ride it out by itself.
          await broker.apache.kill();
          await new Promise((r) => setTimeout(r, 1_000));
          await broker.apache.restart();
          faults.brokerCrashes += 1;
        }
        const callsBefore = meterEventCalls();
        // Kill once this worker is pushing (it has ingested and aggregated something new), at a
        // random moment within the next 800 ms. A worker that exits by itself (a fault at
        // start-up) is restarted, as a supervisor would.
        await waitFor(
          'the worker to push',
          () => {
            if (worker.exitCode !== null || worker.signalCode !== null) {
              faults.selfExits += 1;
              worker = start(workerEnv(cycle + 100 * faults.selfExits));
            }
            return meterEventCalls() > callsBefore;
          },
          90_000,
          50,
        );
        // The first worker reads every partition once before it dies, so every later worker
        // restores a watermark for each partition: from phase 1 on, "too late" is deterministic.
        // (It saves partition maxima once a second, a failed save again at the next: killed
        // sooner, a restarted worker would have no watermark yet and count every event.)
        if (cycle === 0) {
          await waitForGroupCaughtUp(kafka, GROUP, TOPIC, 120_000);
          await new Promise((r) => setTimeout(r, 3_000));
        }
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 800)));
        worker.kill('SIGKILL');
        await exited(worker);
        faults.kills += 1;
      }
      // The last phase is published while a worker runs, faults still on.
      const last = start(workerEnv(999));
      await publishPhase(SIZE.phases - 1);
      await new Promise((r) => setTimeout(r, 3_000));
      last.kill('SIGKILL');
      await exited(last);
      faults.kills += 1;
    } finally {
      clearInterval(stripeTimer);
      clearInterval(brokerTimer);
    }
    expect(faults.kills).toBeGreaterThanOrEqual(10);
    expect(storeFaults.fail + storeFaults.fail_after).toBeGreaterThan(0);

    // Recovery: faults off, one clean worker settles everything.
    if (broker.kind === 'dev') await broker.command('clear_errors');
    else expect(faults.brokerCrashes).toBeGreaterThanOrEqual(2);
    fake.clearFaults();
    const settle = start(env);
    await waitForGroupCaughtUp(kafka, GROUP, TOPIC, 240_000);
    const expectedStripe = new Map<string, bigint>();
    const expectedLedger = new Map<string, { events: number; units: bigint }>();
    for (const [key, e] of truth.events) {
      if (truth.tooLate.has(key)) continue;
      const units = (parseDecimal(e.value) as { units: bigint }).units;
      const s = `cus_${e.tenant}${e.customer.slice(1)}/${e.meter}`;
      expectedStripe.set(s, (expectedStripe.get(s) ?? 0n) + units);
      const l = `${e.tenant}/${e.customer}/${e.meter}`;
      const cur = expectedLedger.get(l) ?? { events: 0, units: 0n };
      expectedLedger.set(l, { events: cur.events + 1, units: cur.units + units });
    }
    const stripeMismatches = () =>
      [...expectedStripe].flatMap(([k, units]) => {
        const got = fake.totalFor(k.split('/')[0]!, k.split('/')[1]!);
        return got === floorUnits(units) ? [] : [{ stream: k, expected: String(floorUnits(units)), stripe: String(got) }];
      });
    const converged = await waitFor('Stripe to hold floor(total) for every stream', () => stripeMismatches().length === 0, 180_000, 250).then(
      () => true,
      () => false,
    );
    settle.kill('SIGTERM');
    expect(await exited(settle)).toEqual({ code: 0, signal: null });

    // Every message in exactly one place; exact totals in the ledger and in the counters.
    const stats = await runCli(['stats', '--json', '--by-customer'], { env });
    expect(stats.code).toBe(0);
    const report = JSON.parse(stats.stdout) as {
      accounting: { accepted: number; duplicates: number; conflicts: number; rejected: number; classifiedTwice: number };
      pushes: Record<string, number>;
      totals: { tenant: string; customer: string; meter: string; countedEvents: number; countedValue: string; counterEvents: number; counterValue: string }[];
    };
    expect(report.accounting).toEqual({
      accepted: truth.events.size,
      duplicates: truth.copies,
      conflicts: truth.conflicts,
      rejected: truth.bad,
      redriven: 0,
      classifiedTwice: 0,
    });
    const ledger = new Map(report.totals.filter((t) => t.countedEvents > 0).map((t) => [`${t.tenant}/${t.customer}/${t.meter}`, { events: t.countedEvents, value: t.countedValue }]));
    const counters = new Map(report.totals.filter((t) => t.counterEvents > 0).map((t) => [`${t.tenant}/${t.customer}/${t.meter}`, { events: t.counterEvents, value: t.counterValue }]));
    const expected = new Map([...expectedLedger].map(([k, v]) => [k, { events: v.events, value: formatDecimal(v.units) }]));
    // First, as one line that survives a truncated log: events counted beyond the truth (> 0: too-late
    // events counted, or copies; < 0: events lost or judged too late wrongly). Then the streams.
    const sumEvents = (m: Map<string, { events: number }>) => [...m.values()].reduce((n, v) => n + v.events, 0);
    expect({
      countedOverTruth: sumEvents(ledger) - sumEvents(expected),
      ledger: [...ledger].filter(([k, v]) => JSON.stringify(expected.get(k)) !== JSON.stringify(v)),
      stripe: stripeMismatches(),
    }).toEqual({ countedOverTruth: 0, ledger: [], stripe: [] });
    expect(converged).toBe(true);
    expect(ledger).toEqual(expected);
    expect(counters).toEqual(expected);
    // Nothing pending; nothing failed (no usage was too old for Stripe).
    expect(report.pushes.pending ?? 0).toBe(0);
    expect(report.pushes.held ?? 0).toBe(0);
    expect(report.pushes.failed ?? 0).toBe(0);
    // Stripe: exactly floor(total) per stream (checked above), and never one identifier with two values.
    expect(fake.identifierConflicts()).toEqual([]);
    const accepted = fake.identifierLog().filter((a) => a.outcome === 'accepted');
    expect(accepted.length).toBe(new Set(accepted.map((a) => a.identifier)).size);

    const figures = {
      scale: FULL ? 'full' : 'ci',
      seed: SEED,
      messages: truth.messages,
      events: truth.events.size,
      copies: truth.copies,
      conflicts: truth.conflicts,
      bad: truth.bad,
      late: truth.late,
      tooLate: truth.tooLate.size,
      kills: faults.kills,
      selfExits: faults.selfExits,
      brokerProtocolErrors: faults.broker,
      brokerCrashes: faults.brokerCrashes,
      brokerErrorsByApi: faults.brokerByApi,
      clickhouseStoreFaults: storeFaults,
      stripeFaults: faults.stripe,
      stripeMeterEventsAccepted: accepted.length,
      stripeAttempts: fake.identifierLog().length,
      lost: 0,
      doubleCounted: 0,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    process.stdout.write(`chaos figures: ${JSON.stringify(figures)}\n`);
    if (process.env.CHAOS_REPORT) fs.writeFileSync(process.env.CHAOS_REPORT, JSON.stringify(figures, null, 2) + '\n');
  }, FULL ? 3_600_000 : 900_000);
});
