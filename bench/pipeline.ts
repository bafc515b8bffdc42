import { createClickHouse } from '../src/adapters/clickhouse/client';
import { importCustomers } from '../src/adapters/clickhouse/customer-store';
import { CHANGE_OVERLAP_MS } from '../src/domain/push-schedule';
import type { LedgerStore } from '../src/ports/ledger';
import { createStreamStore } from '../src/adapters/clickhouse/stream-store';
import { loadAllotments } from '../src/adapters/allotments-file';
import { startAlertsFromConfig } from '../src/pipeline/alerts-from-config';
import { createWorkerPusher, pushPace, startWorkerIngest, withChangeFeed, type WorkerContext } from '../src/app/worker';
import { migrate } from '../src/adapters/clickhouse/migrations';
import { createDeadLetterSink } from '../src/adapters/kafka/dlq';
import { createKafka } from '../src/adapters/kafka/kafka';
import { loadMeterCatalog } from '../src/adapters/meters-file';
import { createBillingSink } from '../src/adapters/stripe/from-config';
import { loadConfig } from '../src/config/config';
import { newWorkerIdentity } from '../src/runtime/worker-identity';
import type { IngestWorker } from '../src/pipeline/ingest-worker';
import { PUSH_PACE } from '../src/domain/push-pace';
import { startPushLoop } from '../src/pipeline/push-loop';
import { createLogger } from '../src/runtime/logger';
import { createMetrics } from '../src/runtime/metrics';
import { startMemorySampler, type MemoryPeaks } from './memory';
import { percentile } from './workload';

/** Wall time spent in each method of a port, accumulated (ms): where the pipeline waits. */
const timings: Record<string, { calls: number; ms: number }> = {};
/**
 * The port with each method timed. A method that returns a value (not a promise) still returns it
 * as it is: made async, `keptBefore()` and `freshFrom()` of the stream store gave the pusher
 * promises to compare window starts with (always false), up to the fifteenth session.
 */
function timed<T extends object>(name: string, port: T): T {
  const out = { ...port } as Record<string, unknown>;
  for (const [k, fn] of Object.entries(port)) {
    if (typeof fn !== 'function') continue;
    const record = (t0: number) => {
      const t = (timings[`${name}.${k}`] ??= { calls: 0, ms: 0 });
      t.calls += 1;
      t.ms += performance.now() - t0;
    };
    out[k] = (...args: unknown[]) => {
      const t0 = performance.now();
      let result: unknown;
      try {
        result = (fn as (...a: unknown[]) => unknown).apply(port, args);
      } catch (err) {
        record(t0);
        throw err;
      }
      if (!(result instanceof Promise)) {
        record(t0);
        return result;
      }
      return result.finally(() => record(t0));
    };
  }
  return out as T;
}

export interface PipelineParams {
  readonly brokers: string[];
  readonly dataDir: string;
  readonly metersFile: string;
  readonly topic: string;
  readonly latencyTopic: string;
  readonly dlqTopic: string;
  readonly events: number;
  readonly customers: number;
  readonly tenants: number;
  /** Distinct events the workload published (events − copies): what the ledger must hold. */
  readonly uniqueEvents: number;
  /** Usage alerts during the latency phase: the allotments file and the alerts topic. */
  readonly allotmentsFile: string;
  readonly alertsTopic: string;
}

export interface ThroughputResult {
  readonly events: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly totals: Record<string, number>;
  /** consumed = accepted + duplicates + conflicts + rejected + redelivered, and the ledger holds each published event exactly once. */
  readonly accountingOk: boolean;
  readonly ledgerRows: number;
  readonly activeParts: number;
  /** RSS (MiB) when 25 / 50 / 75 / 100 % of the events were processed: flat means no growth with history. */
  readonly rssAtProgressMiB: number[];
  readonly heapUsedAtProgressMiB: number[];
  readonly eventsPerSecondByQuarter: number[];
  readonly eventsPerSecondByDecile: number[];
  readonly pushDrainSeconds: number;
  readonly stripeCalls: number;
  /** Time spent in each port method during the throughput phase (calls, seconds). */
  readonly breakdown: Record<string, { calls: number; seconds: number }>;
}

export interface LatencyResult {
  readonly published: number;
  readonly counted: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly maxMs: number | null;
  /** Ingest units of the phase (a unit's fixed costs are paid per unit, whatever its size). */
  readonly units: number;
  /** The worst latency of events published in each 5 s of the phase: flat if the pipeline keeps up, rising if it falls behind. */
  readonly maxMsByFiveSeconds: number[];
  /**
   * The phase begins a push term: its first cycle reads every stream's history. How long that
   * cycle took from the phase's start, and the p99 of the events published after it ended (null:
   * it did not end within the phase). The loop then rests three times the cycle's length: only a
   * phase several times longer (`--latency-seconds 120`) sees the push cycles of a steady state.
   */
  readonly termStart: { readonly firstCycleMs: number | null; readonly eventsAfter: number; readonly p99AfterMs: number | null };
  /** Where the phase's time went (the throughput phase's breakdown, counted again from the phase's start). */
  readonly breakdown: Record<string, { calls: number; seconds: number }>;
  readonly peakRssMiB: number;
  /** Where the resident memory was (both phases), and the dedupe filter's share of it. */
  readonly memory: MemoryPeaks & {
    readonly peakAnonThroughputPhaseMiB: number;
    /** The highest anonymous RSS of each phase: where the run's peak is. */
    readonly peakAnonByPhaseMiB: { readonly throughput: number; readonly pushDrain: number; readonly latency: number };
    readonly dedupeFilterMiB: number;
  };
}

type Send = (msg: unknown) => void;
type Receive = () => Promise<unknown>;

/**
 * The full pipeline as `meterline run` wires it (ingest with dedupe, enrichment, the change
 * record and watermarks; the push loop in shadow mode), in this process so its peak RSS is the worker's.
 * Phase 1 drains the pre-published backlog of `events`; phase 2 consumes a topic published at a
 * fixed offered rate and measures publish → counter-update latency per new event.
 */
export async function runPipeline(p: PipelineParams, send: Send, receive: Receive): Promise<void> {
  const memorySampler = startMemorySampler();
  const env = {
    METERLINE_DATA_DIR: p.dataDir,
    KAFKA_BROKERS: p.brokers.join(','),
    KAFKA_DLQ_TOPIC: p.dlqTopic,
    METERS_FILE: p.metersFile,
    ALLOTMENTS_FILE: p.allotmentsFile,
    ALERTS_TOPIC: p.alertsTopic,
    LOG_LEVEL: 'warn',
  };
  const config = loadConfig(env);
  const logger = createLogger({ level: 'warn', name: 'meterline-bench' });
  const meters = loadMeterCatalog(config.ingest.metersFile);
  const ch = createClickHouse(config);
  const db = config.clickhouse.database;
  await migrate(ch, db);
  // Every customer mapped to Stripe: otherwise their usage waits as "awaiting mapping" and no push is planned.
  const mappings = [];
  for (let t = 0; t < p.tenants; t += 1) {
    for (let c = 0; c < p.customers; c += 1) mappings.push({ tenant: `tenant-${t}`, customer: `cust-${c}`, stripeCustomerId: `cus_bench_${t}_${c}` });
  }
  // Stamped as imported a minute ago, as a deployment's customers are mapped before its usage
  // comes: a mapping imported within CHANGE_OVERLAP_MS of the push loop's cursor is a change, and
  // every mapped customer's streams were planned a second time once the backlog's deferred
  // streams were served (the push drain's second half, up to the fifteenth session).
  await importCustomers(ch, db, mappings, Date.now() - 2 * CHANGE_OVERLAP_MS);
  const kafka = createKafka(p.brokers, { clientId: 'meterline-bench', logger });
  const metrics = createMetrics({ defaultMetrics: false });
  const deadLetters = await createDeadLetterSink(kafka, config.kafka.dlqTopic);
  // Publish → counter latency: event times are stamped at publish in phase 2; a new event's
  // window total is queryable once its unit is durable (the ledger's projections aggregate it).
  let recording = false;
  let justStored: number[] = [];
  const latencies: number[] = [];
  // The worker as `meterline run` assembles it (src/app/worker.ts), each adapter timed. One worker
  // identity for the process: its workers run one after another, each filter built from the ledger.
  const ctx: WorkerContext = withChangeFeed({
    config,
    ch,
    kafka,
    meters: () => meters,
    metrics,
    logger,
    ingestedBy: newWorkerIdentity(),
    wrap: <T extends object>(name: string, adapter: T): T => {
      const t = timed(name, adapter);
      if (name !== 'ledger') return t;
      const ledger = t as unknown as LedgerStore;
      return {
        ...ledger,
        async insertNew(events, ingestedAt) {
          await ledger.insertNew(events, ingestedAt);
          if (recording) for (const e of events) justStored.push(e.candidate.event.timestamp);
        },
      } satisfies LedgerStore as unknown as T;
    },
  });
  const startWorker = (topic: string, groupId: string): Promise<IngestWorker> =>
    startWorkerIngest(ctx, {
      topic,
      groupId,
      deadLetters,
      onFilterBuilt: (ms) => {
        const build = (timings['dedupeFilter.build'] ??= { calls: 0, ms: 0 });
        build.calls += 1;
        build.ms += ms;
      },
    });
  const pusher = createWorkerPusher(ctx, { sink: createBillingSink(config, metrics) });
  // Paced by the ingest worker running beside it, as in `meterline run` (domain/push-pace.ts).
  let ingesting: IngestWorker | null = null;
  const pace = pushPace({ backlog: () => ingesting?.backlog() ?? 0 });
  const pushLoop = await startPushLoop(pusher, logger, PUSH_PACE.INTERVAL_MS, undefined, pace);

  // Phase 1: throughput over the backlog.
  const rssAtProgress: number[] = [];
  // The JavaScript heap at the same marks: the rest of the RSS is mostly the embedded engine.
  const heapAtProgress: number[] = [];
  // Events/s within each quarter of the backlog: flat means the cost per event does not grow
  // with the events already stored.
  const rateByQuarter: number[] = [];
  let quarterStart = { at: performance.now(), consumed: 0 };
  let nextMark = 0.25;
  // The same per tenth (a long run's deciles: issue 16 asks them flat from first to last).
  const rateByDecile: number[] = [];
  let decileStart = { at: performance.now(), consumed: 0 };
  let nextDecile = 1;
  const started = performance.now();
  const worker = await startWorker(p.topic, 'bench-pipeline');
  ingesting = worker;
  let lastProgress = 0;
  await new Promise<void>((resolve) => {
    worker.onUnit(() => {
      const consumed = worker.totals.consumed;
      while (consumed >= nextMark * p.events && nextMark <= 1) {
        const mem = process.memoryUsage();
        rssAtProgress.push(Math.round(mem.rss / 1048576));
        heapAtProgress.push(Math.round(mem.heapUsed / 1048576));
        const now = performance.now();
        rateByQuarter.push(Math.round((consumed - quarterStart.consumed) / ((now - quarterStart.at) / 1000)));
        quarterStart = { at: now, consumed };
        nextMark += 0.25;
      }
      while (nextDecile <= 10 && consumed >= (nextDecile / 10) * p.events) {
        const now = performance.now();
        rateByDecile.push(Math.round((consumed - decileStart.consumed) / ((now - decileStart.at) / 1000)));
        decileStart = { at: now, consumed };
        nextDecile += 1;
      }
      if (performance.now() - lastProgress > 5000) {
        lastProgress = performance.now();
        process.stderr.write(`bench: pipeline ${consumed}/${p.events} (${Math.round(consumed / ((lastProgress - started) / 1000))} ev/s)\n`);
      }
      if (consumed >= p.events) resolve();
    });
  });
  const seconds = (performance.now() - started) / 1000;
  const peakAnonThroughputPhaseMiB = memorySampler.peakAnonSoFarMiB();
  memorySampler.peakAnonSinceLastMiB(); // the next phase's peak starts here (this one's is the peak so far)
  const breakdown = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, { calls: v.calls, seconds: Math.round(v.ms) / 1000 }]));
  await worker.stop();
  const totals = { ...worker.totals } as unknown as Record<string, number>;
  process.stderr.write(`bench: pipeline drained ${p.events} events in ${seconds.toFixed(1)} s; letting the pusher catch up\n`);
  // Push: stop the loop, then cycle until nothing new is due (shadow mode: rows, no calls): a
  // cycle that starts no push and leaves no stream due to the next. (Stopping at the first cycle
  // without a push made the figure depend on the order of the streams due: with 1,000 planned a
  // cycle, the ones still needing a push could come first, or be spread over 50 cycles.)
  const pushStart = performance.now();
  await pushLoop.stop();
  let cycles = 0;
  for (;;) {
    const s = await pusher.cycle();
    await pusher.drain();
    cycles += 1;
    process.stderr.write(`bench: push cycle ${cycles} after ingest: ${s.started} pushes, ${s.deferred} streams left due\n`);
    if ((s.started === 0 && s.deferred === 0) || performance.now() - pushStart > 300_000) break;
  }
  const pushDrainSeconds = (performance.now() - pushStart) / 1000;
  const pushDrainAnonMiB = memorySampler.peakAnonSinceLastMiB();
  const q = async (sql: string) => Number(((await (await ch.query({ query: sql, format: 'JSONEachRow' })).json<{ c: string }>())[0]?.c) ?? 0);
  const ledgerRows = await q(`SELECT count() AS c FROM ${db}.usage_events`);
  const ledgerKeys = await q(`SELECT uniqExact(tenant, id) AS c FROM ${db}.usage_events`);
  const activeParts = await q(`SELECT count() AS c FROM system.parts WHERE database = '${db}' AND table = 'usage_events' AND active`);
  const stripeCalls = await q(`SELECT count() AS c FROM ${db}.stripe_pushes FINAL WHERE status = 'shadow'`);
  const t = worker.totals;
  // Re-reads after a rebalance are counted as redelivered (stored by an earlier pass whose commit failed).
  const accountingOk =
    t.consumed === t.accepted + t.duplicates + t.conflicts + t.rejected + t.redelivered && ledgerRows === p.uniqueEvents && ledgerKeys === ledgerRows;
  const throughput: ThroughputResult = {
    events: t.consumed,
    seconds,
    eventsPerSecond: t.consumed / seconds,
    totals,
    accountingOk,
    ledgerRows,
    activeParts,
    rssAtProgressMiB: rssAtProgress,
    heapUsedAtProgressMiB: heapAtProgress,
    eventsPerSecondByQuarter: rateByQuarter,
    eventsPerSecondByDecile: rateByDecile,
    pushDrainSeconds,
    stripeCalls,
    breakdown,
  };
  send({ type: 'throughput', result: throughput });

  // Phase 2: latency at a fixed offered rate (the parent publishes; event time = publish time).
  const lat = await startWorker(p.latencyTopic, 'bench-latency');
  ingesting = lat;
  const phaseStart = Date.now();
  const timingsBefore = Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, { ...v }]));
  const maxByFiveSeconds: number[] = [];
  // Events published after the term's first push cycle ended (see LatencyResult.termStart).
  let firstCycleEndedAt: number | null = null;
  const latenciesAfterFirstCycle: number[] = [];
  lat.onUnit(() => {
    const now = Date.now();
    for (const ts of justStored) {
      latencies.push(now - ts);
      if (firstCycleEndedAt !== null && ts >= firstCycleEndedAt) latenciesAfterFirstCycle.push(now - ts);
      const bucket = Math.max(0, Math.floor((ts - phaseStart) / 5_000));
      maxByFiveSeconds[bucket] = Math.max(maxByFiveSeconds[bucket] ?? 0, now - ts);
    }
    justStored = [];
  });
  recording = true;
  const termPusher: typeof pusher = {
    ...pusher,
    async cycle() {
      const summary = await pusher.cycle();
      firstCycleEndedAt ??= Date.now();
      return summary;
    },
  };
  const latencyLoop = await startPushLoop(termPusher, logger, PUSH_PACE.INTERVAL_MS, undefined, pace);
  // The alerter, as `meterline run` starts it, on the latency worker's leadership (its own change reads).
  const alertStreams = createStreamStore(ch, db);
  const alerts = await startAlertsFromConfig({
    config,
    kafka,
    ch,
    allotments: loadAllotments(p.allotmentsFile, meters),
    changedStreams: (since, exceptWriter) => alertStreams.changedStreams(since, exceptWriter),
    changes: ctx.changes,
    leadership: { isLeader: () => lat.owns(0), graceMs: 5_000 },
    metrics,
    logger,
  });
  send({ type: 'latency-ready' });
  const { published } = (await receive()) as { published: number };
  const deadline = Date.now() + 60_000;
  while (lat.totals.consumed < published && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  await lat.stop();
  await alerts?.stop();
  await latencyLoop.stop();
  const sorted = Float64Array.from(latencies).sort();
  const filterBytes = (await metrics.dedupeFilterBytes.get()).values[0]?.value ?? 0;
  const peaks = memorySampler.stop();
  const peakAnonByPhaseMiB = { throughput: peakAnonThroughputPhaseMiB, pushDrain: pushDrainAnonMiB, latency: memorySampler.peakAnonSinceLastMiB() };
  const memory = { ...peaks, peakAnonThroughputPhaseMiB, peakAnonByPhaseMiB, dedupeFilterMiB: Math.round((filterBytes / 1048576) * 10) / 10 };
  const result: LatencyResult = {
    published,
    counted: sorted.length,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: percentile(sorted, 1),
    units: lat.totals.units,
    breakdown: Object.fromEntries(
      Object.entries(timings).map(([k, v]) => [k, { calls: v.calls - (timingsBefore[k]?.calls ?? 0), seconds: Math.round(v.ms - (timingsBefore[k]?.ms ?? 0)) / 1000 }]).filter(([, v]) => (v as { calls: number }).calls > 0),
    ),
    maxMsByFiveSeconds: Array.from(maxByFiveSeconds, (v) => v ?? 0),
    termStart: {
      firstCycleMs: firstCycleEndedAt === null ? null : firstCycleEndedAt - phaseStart,
      eventsAfter: latenciesAfterFirstCycle.length,
      p99AfterMs: percentile(Float64Array.from(latenciesAfterFirstCycle).sort(), 0.99),
    },
    peakRssMiB: memory.peakRssMiB,
    memory,
  };
  await deadLetters.close();
  await ch.close();
  send({ type: 'latency', result });
}
