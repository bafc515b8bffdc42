import { measureFilterBuild } from './filter-build';
import { measureAlertCycle } from './alert-cycle';
import { measureLedgerInsert } from './ledger-insert';
import { measurePlanCycle } from './plan-cycle';
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { createSingleObjectEncoder } from '../src/adapters/avro/codec';
import { startDevBroker } from '../src/dev/dev-broker/broker';
import { startApacheKafka } from '../src/dev/apache-kafka/broker';
import { kafkaVersionFromEnv } from '../src/dev/apache-kafka/versions';
import { createPublisher, type Publisher } from '../src/adapters/kafka/publisher';
import { measureGateway, type GatewayBenchParams, type GatewayBenchResult } from './gateway';
import { alertBenchAllotments, measureAlertLatency, type AlertLatencyResult } from './alerts';
import type { UsageEvent } from '../src/domain/usage-event';
import { projectRoot } from '../src/runtime/project-root';
import { runBaseline, type BaselineParams, type BaselineResult } from './baseline';
import { parseOptions, USAGE, type BenchOptions } from './options';
import { runPipeline, type LatencyResult, type PipelineParams, type ThroughputResult } from './pipeline';
import { workload } from './workload';

const TOPIC = 'bench.events';
const LATENCY_TOPIC = 'bench.latency';
const DLQ_TOPIC = 'bench.events.dlq';
/** The gateway's events go to a topic of their own: the pipeline's accounting stays exact. */
const GATEWAY_TOPIC = 'bench.gateway';
const ALERTS_TOPIC = 'bench.alerts';
/** Alert latency: fresh customers of a tenant of their own, each crossing its allotment with one event. */
const ALERT_TENANT = 'bench-alerts';
const ALERT_METER = 'tokens';
const ALERT_LIMIT = '1000';
/**
 * Events per producer send in the throughput phase (one record batch of ~2,500 events per
 * partition). The dev broker answers a fetch with one record batch per partition, so this is
 * what one fetch returns; real Kafka returns up to maxBytesPerPartition (2 MiB ≈ 19,000 events).
 */
const PUBLISH_CHUNK = 20_000;
const LINGER_MS = 50;

const progress = (m: string) => process.stderr.write(`bench: ${m}\n`);

/**
 * `npm run bench [-- --quick]`: one JSON object on stdout. The parent process runs the dev
 * broker and the publishers; the baseline and the pipeline each run in a child process of
 * their own (the same launcher with `--child`), so each one's peak RSS is its own.
 */
export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stderr.write(`${USAGE}\n`);
    return 0;
  }
  if (argv[0] === '--child') return runChild(argv[1]!);
  if (argv[0] === '--filter-build') return measureFilterBuild(Number(argv[1] ?? 1_000_000));
  if (argv[0] === '--plan-cycle') return measurePlanCycle(Number(argv[1] ?? 50_000));
  if (argv[0] === '--ledger-insert') return measureLedgerInsert(argv.slice(1));
  if (argv[0] === '--alert-cycle') return measureAlertCycle(Number(argv[1] ?? 2_000));
  const opts = parseOptions(argv);
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-bench-'));
  progress(`options ${JSON.stringify(opts)}; load ${loadAtStart.join(' ')}; data in ${dir}`);
  const topics = [
    { name: TOPIC, partitions: opts.partitions },
    { name: LATENCY_TOPIC, partitions: opts.partitions },
    { name: DLQ_TOPIC, partitions: 1 },
    { name: GATEWAY_TOPIC, partitions: opts.partitions },
    { name: ALERTS_TOPIC, partitions: 1 },
  ];
  const broker = await startBenchBroker(opts.broker, topics);
  progress(`broker: ${broker.name} at ${broker.bootstrapServers.join(',')}`);
  try {
    const kafka = new Kafka({ clientId: 'bench-publisher', brokers: broker.bootstrapServers, logLevel: logLevel.NOTHING });
    const publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });
    // Event times: a one-hour stream ending ten minutes ago (late events lie up to 3 h behind it).
    const now = Date.now();
    const w = workload({
      events: opts.events,
      customers: opts.customers,
      tenants: opts.tenants,
      duplicateRate: opts.duplicateRate,
      lateRate: opts.lateRate,
      seed: opts.seed,
      start: now - 70 * 60_000,
      spanMs: 60 * 60_000,
      idPrefix: `bench-${opts.seed}`,
    });
    const publishStart = performance.now();
    await publishAll(publisher, w.events);
    const publishSeconds = (performance.now() - publishStart) / 1000;
    progress(`published ${w.stats.produced} events (${w.stats.copies} copies, ${w.stats.late} late) in ${publishSeconds.toFixed(1)} s`);
    await assertRetained(kafka, TOPIC, opts.events);

    const baseline = await child<BaselineResult>('baseline', { brokers: broker.bootstrapServers, topic: TOPIC, events: opts.events } satisfies BaselineParams);
    progress(`baseline: ${Math.round(baseline.eventsPerSecond)} ev/s`);

    const pipelineParams: PipelineParams = {
      brokers: broker.bootstrapServers,
      dataDir: path.join(dir, 'data'),
      metersFile: path.join(projectRoot(), 'bench', 'meters.bench.yaml'),
      topic: TOPIC,
      latencyTopic: LATENCY_TOPIC,
      dlqTopic: DLQ_TOPIC,
      events: opts.events,
      customers: opts.customers,
      tenants: opts.tenants,
      uniqueEvents: w.stats.produced - w.stats.copies,
      allotmentsFile: path.join(dir, 'allotments.yaml'),
      alertsTopic: ALERTS_TOPIC,
    };
    fs.writeFileSync(pipelineParams.allotmentsFile, alertBenchAllotments(ALERT_TENANT, ALERT_METER, ALERT_LIMIT));
    let alertLatency: AlertLatencyResult | undefined;
    const { throughput, latency } = await pipelineChild(pipelineParams, async () => {
      const latencyPublisher = await createPublisher({ kafka, topic: LATENCY_TOPIC, encoder: createSingleObjectEncoder() });
      try {
        // Crossings of allotments during the offered load: publication → alert on the topic.
        const alertsMeasured = measureAlertLatency({
          kafka,
          publisher: latencyPublisher,
          alertsTopic: ALERTS_TOPIC,
          tenant: ALERT_TENANT,
          meter: ALERT_METER,
          limit: ALERT_LIMIT,
          crossings: Math.max(3, Math.min(40, opts.latencySeconds * 2)),
          spacingMs: 400,
        });
        const published = await publishAtRate(latencyPublisher, opts);
        alertLatency = await alertsMeasured;
        return published;
      } finally {
        await latencyPublisher.close();
      }
    });
    await publisher.close();
    // HTTP ingest beside the Kafka path: the gateway in a child of its own (with its HTTP client).
    const gateway = await child<GatewayBenchResult>('gateway', {
      brokers: broker.bootstrapServers,
      topic: GATEWAY_TOPIC,
      // 20,000 single-event requests and 400 of 500 events in the default run; fewer in smaller ones.
      singleRequests: Math.min(20_000, Math.max(200, Math.round(opts.events / 50))),
      batchRequests: Math.min(400, Math.max(4, Math.round(opts.events / 2_500))),
    } satisfies GatewayBenchParams);
    progress(`gateway: ${gateway.gatewaySingleEventsPerSecond} ev/s single, ${gateway.gatewayBatchedEventsPerSecond} ev/s batched`);

    const result = {
      benchmark: opts.quick ? 'quick' : 'default',
      date: new Date().toISOString(),
      commit: gitCommit(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
      broker: broker.name,
      events: opts.events,
      customers: opts.customers,
      tenants: opts.tenants,
      meters: 5,
      partitions: opts.partitions,
      duplicates: w.stats.copies,
      late: w.stats.late,
      publishEventsPerSecond: Math.round(opts.events / publishSeconds),
      pipelineEventsPerSecond: Math.round(throughput.eventsPerSecond),
      baselineEventsPerSecond: Math.round(baseline.eventsPerSecond),
      ratio: Math.round((throughput.eventsPerSecond / baseline.eventsPerSecond) * 1000) / 1000,
      pipelineSeconds: round1(throughput.seconds),
      baselineSeconds: round1(baseline.seconds),
      latency: { offeredEventsPerSecond: opts.rate, seconds: opts.latencySeconds, published: latency.published, measured: latency.counted, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, maxMs: latency.maxMs, units: latency.units, maxMsByFiveSeconds: latency.maxMsByFiveSeconds, termStart: latency.termStart, breakdownSeconds: latency.breakdown },
      stripeCalls: throughput.stripeCalls,
      stripeCallsPerMillionEvents: Math.round((throughput.stripeCalls / opts.events) * 1e6),
      pushDrainSeconds: round1(throughput.pushDrainSeconds),
      peakRssMiB: { pipelineWorker: latency.peakRssMiB, baselineConsumer: Math.round(baseline.peakRssMiB) },
      memoryMiB: latency.memory,
      rssAtProgressMiB: throughput.rssAtProgressMiB,
      heapUsedAtProgressMiB: throughput.heapUsedAtProgressMiB,
      pipelineEventsPerSecondByQuarter: throughput.eventsPerSecondByQuarter,
      pipelineEventsPerSecondByDecile: throughput.eventsPerSecondByDecile,
      totals: throughput.totals,
      accountingOk: throughput.accountingOk,
      ledgerRows: throughput.ledgerRows,
      activeLedgerParts: throughput.activeParts,
      breakdownSeconds: throughput.breakdown,
      gateway,
      alerts: alertLatency,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return throughput.accountingOk ? 0 : 1;
  } finally {
    await broker.stop();
    if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  }
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** Publishes in chunks, a few sends in flight, as fast as the (idempotent, acks = -1) producer goes. */
async function publishAll(publisher: Publisher, events: Iterable<UsageEvent>): Promise<void> {
  let chunk: UsageEvent[] = [];
  for (const e of events) {
    chunk.push(e);
    if (chunk.length === PUBLISH_CHUNK) {
      await publisher.publish(chunk);
      chunk = [];
    }
  }
  await publisher.publish(chunk);
}

/**
 * Offered load: every 50 ms (a producer's linger), whatever the rate says is due, with event
 * time = publish time. The dev broker answers a fetch with one record batch per partition, so
 * the producer's batch size bounds what one fetch can return (real Kafka returns up to
 * maxBytesPerPartition); 50 ms batches keep that from capping the pipeline below the rate.
 */
async function publishAtRate(publisher: Publisher, opts: BenchOptions): Promise<number> {
  const total = Math.round(opts.rate * opts.latencySeconds);
  const w = workload({
    events: total,
    customers: opts.customers,
    tenants: opts.tenants,
    duplicateRate: opts.duplicateRate,
    lateRate: 0,
    seed: opts.seed + 1,
    start: 0,
    spanMs: 0,
    idPrefix: `bench-latency-${opts.seed}`,
    clock: () => stamp,
  });
  const started = performance.now();
  let sent = 0;
  let behind = 0;
  let stamp = Date.now();
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * opts.rate));
    if (due > sent) {
      stamp = Date.now();
      const chunk: UsageEvent[] = [];
      for (; sent < due; sent += 1) chunk.push(w.events.next().value as UsageEvent);
      await publisher.publish(chunk);
      if (chunk.length > (2 * opts.rate * LINGER_MS) / 1000) behind += 1;
    }
    await new Promise((r) => setTimeout(r, LINGER_MS));
  }
  if (behind > 0) progress(`latency publisher fell behind its schedule ${behind} times`);
  return sent;
}

/** Nothing may have been dropped by the broker's retention: every partition still starts at 0. */
async function assertRetained(kafka: Kafka, topic: string, events: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const held = offsets.reduce((s, o) => s + Number(o.high) - Number(o.low), 0);
    if (held !== events || offsets.some((o) => o.low !== '0')) {
      throw new Error(`the broker holds ${held} of ${events} events (${JSON.stringify(offsets)}): retention dropped some; use more --partitions`);
    }
  } finally {
    await admin.disconnect();
  }
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: projectRoot(), encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: projectRoot(), encoding: 'utf8' }).trim();
    return dirty ? `${head}-dirty` : head;
  } catch {
    return 'unknown';
  }
}

// --- child processes ------------------------------------------------------------------------

const LAUNCHER = path.join(__dirname, '..', 'bin', 'meterline-bench');

/**
 * BENCH_CPU_PROFILE_DIR=dir: each child writes a V8 CPU profile there (open it in Chrome DevTools).
 * BENCH_CHILD_NODE_FLAGS="--flag …": Node/V8 flags for each child (e.g. --trace-gc), for experiments.
 */
function spawnChild(mode: string, params: unknown): ChildProcess {
  const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
  const flags = (process.env.BENCH_CHILD_NODE_FLAGS ?? '').split(' ').filter((f) => f !== '');
  return fork(LAUNCHER, ['--child', mode], {
    env: { ...process.env, METERLINE_BENCH_PARAMS: JSON.stringify(params) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...flags],
  });
}

function onExit(c: ChildProcess, reject: (e: Error) => void) {
  c.once('exit', (code, signal) => reject(new Error(`benchmark child exited early (code ${code}, signal ${signal})`)));
}

async function child<T>(mode: string, params: unknown): Promise<T> {
  const c = spawnChild(mode, params);
  return new Promise<T>((resolve, reject) => {
    c.once('message', (m) => resolve((m as { result: T }).result));
    onExit(c, reject);
  });
}

/** The pipeline child: throughput result, then a handshake for the latency phase. */
async function pipelineChild(params: PipelineParams, offerLoad: () => Promise<number>): Promise<{ throughput: ThroughputResult; latency: LatencyResult }> {
  const c = spawnChild('pipeline', params);
  return new Promise((resolve, reject) => {
    let throughput: ThroughputResult | undefined;
    c.on('message', (m) => {
      const msg = m as { type: string; result?: unknown };
      if (msg.type === 'throughput') {
        throughput = msg.result as ThroughputResult;
        progress(`pipeline: ${Math.round(throughput.eventsPerSecond)} ev/s; offering ${LATENCY_TOPIC} load next`);
      } else if (msg.type === 'latency-ready') {
        offerLoad().then((published) => c.send({ published }), reject);
      } else if (msg.type === 'latency') {
        resolve({ throughput: throughput!, latency: msg.result as LatencyResult });
      }
    });
    onExit(c, reject);
  });
}

async function runChild(mode: string): Promise<number> {
  const params = JSON.parse(process.env.METERLINE_BENCH_PARAMS ?? '{}') as unknown;
  const send = (msg: unknown) => process.send!(msg);
  if (mode === 'baseline') {
    send({ result: await runBaseline(params as BaselineParams) });
  } else if (mode === 'gateway') {
    send({ result: await measureGateway(params as GatewayBenchParams) });
  } else if (mode === 'pipeline') {
    const inbox: unknown[] = [];
    let waiting: ((m: unknown) => void) | undefined;
    process.on('message', (m) => (waiting ? (waiting(m), (waiting = undefined)) : inbox.push(m)));
    const receive = () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise<unknown>((r) => (waiting = r)));
    await runPipeline(params as PipelineParams, send, receive);
  } else {
    throw new Error(`unknown child mode ${mode}`);
  }
  process.disconnect?.();
  // kafkajs / chdb handles may linger: the result is sent, so leave now.
  setTimeout(() => process.exit(0), 100).unref();
  return 0;
}

/** The broker under the benchmark: the dev broker, or Apache Kafka (1 GiB heap) on a temporary log directory. */
async function startBenchBroker(kind: 'dev' | 'kafka', topics: { name: string; partitions: number }[]): Promise<{ name: string; bootstrapServers: string[]; stop(): Promise<void> }> {
  if (kind === 'kafka') {
    const version = kafkaVersionFromEnv();
    const kafka = await startApacheKafka({ version, topics, heapMb: 1024, log: (m) => (m.startsWith('apache-kafka:') ? progress(m) : undefined) });
    return { name: `apache-kafka-${version}`, bootstrapServers: kafka.bootstrapServers, stop: () => kafka.stop() };
  }
  const dev = await startDevBroker({ topics, log: (m) => (m.startsWith('build-dev-broker:') ? progress(m) : undefined) });
  return { name: 'dev', bootstrapServers: dev.bootstrapServers, stop: () => dev.stop() };
}
