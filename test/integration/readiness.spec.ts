import type { Kafka, Producer } from 'kafkajs';
import { createDecoder, createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createLedgerStore, type LedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import type { TestBroker } from '../helpers/kafka';
import { createGroupOffsetReader } from '../../src/adapters/kafka/group-lag';
import { parseMeterCatalog } from '../../src/domain/meters';
import { generateEvents } from '../../src/domain/sample';
import { partitionKey } from '../../src/domain/usage-event';
import { startHealthMonitor, type HealthMonitor } from '../../src/pipeline/health-monitor';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

/**
 * The peer's incident: a worker stopped consuming while its health check stayed green. Here a
 * worker's batch hangs (its ledger write never returns) while producers go on: /health/ready
 * must turn not ready within READY_STALL_SECONDS, naming the stalled partition, while lag grows;
 * and turn ready again once the batch completes.
 */
const TOPIC = 'usage.events';
const GROUP = 'readiness-test';
const STALL_MS = 2_000;

const parsed = parseMeterCatalog({ meters: ['api_calls', 'tokens', 'gpu_seconds'].map((name) => ({ name, aggregation: 'sum', window: 'hour', allowed_lateness: '1d' })) });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));

describe('readiness: a worker whose consumption stalls turns not ready', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let ch: TestClickHouse;
  let worker: IngestWorker | undefined;
  let health: HealthMonitor | undefined;

  beforeAll(async () => {
    broker = await startTestBroker([{ name: TOPIC, partitions: 1 }]);
    kafka = kafkaFor(broker);
    producer = kafka.producer();
    await producer.connect();
    ch = await testClickHouse('readiness');
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await health?.stop();
    await worker?.stop();
    await producer?.disconnect();
    await broker?.stop();
    await ch?.close();
  });

  it('goes not ready while a hung batch leaves lag growing, and ready again when it completes', async () => {
    const real = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 });
    // While hanging, every insert waits (units are pipelined: the next one is written meanwhile).
    const hung: (() => void)[] = [];
    const release = () => hung.splice(0).forEach((r) => r());
    let hang = false;
    const gate = () => (hang ? new Promise<void>((r) => hung.push(r)) : Promise.resolve());
    const ledger: LedgerStore = { ...real, insertNew: async (events, at) => (await gate(), real.insertNew(events, at)) };
    const metrics = createMetrics({ defaultMetrics: false });
    health = startHealthMonitor({
      offsets: createGroupOffsetReader(kafka, TOPIC, GROUP),
      pingClickHouse: async () => undefined,
      metrics,
      clock: Date.now,
      logger: silentLogger(),
      stallMs: STALL_MS,
      pollMs: 200,
    });
    expect(health.readiness()).toEqual({ ready: false, reasons: ['starting'] });
    worker = await startIngestWorker({
      kafka,
      topic: TOPIC,
      groupId: GROUP,
      logger: silentLogger(),
      consumer: TEST_CONSUMER_TIMINGS,
      deps: { decoder: createDecoder({}), meters: () => parsed.catalog, ledger, clock: Date.now, maxFutureSkewMs: 300_000, metrics },
    });
    health.attach(worker);
    const encoder = createSingleObjectEncoder();
    let seed = 0;
    const publish = async (n: number) => {
      seed += 1;
      const events = generateEvents({ count: n, seed, idPrefix: `r${seed}` });
      await producer.send({ topic: TOPIC, messages: await Promise.all(events.map(async (e) => ({ key: partitionKey(e), value: await encoder.encode(e) }))) });
    };
    const lag = async () => Number((await metrics.consumerLag.get()).values.find((v) => v.labels.partition === '0')?.value ?? -1);

    // Healthy: consuming, ready.
    await publish(50);
    await waitFor('50 events consumed', () => worker!.totals.consumed >= 50);
    await waitFor('ready', () => health!.readiness().ready, 10_000);

    // The next batch hangs; producers go on.
    hang = true;
    await publish(20);
    const hungAt = Date.now();
    await new Promise((r) => setTimeout(r, 500));
    await publish(30);
    await waitFor('not ready', () => !health!.readiness().ready, 10_000, 100);
    const notReadyAfter = Date.now() - hungAt;
    expect(notReadyAfter).toBeGreaterThanOrEqual(STALL_MS);
    expect(health.readiness().reasons).toEqual(['consumption stalled on partition(s) 0']);
    expect((await metrics.ready.get()).values[0]!.value).toBe(0);
    expect(await lag()).toBe(50);
    expect(health.liveness().ready).toBe(true); // the process is alive: readiness, not liveness, takes it out of rotation

    // The batch completes: progress, ready again, lag drains.
    hang = false;
    release();
    await waitFor('ready again', () => health!.readiness().ready, 15_000, 100);
    await waitFor('lag drained', async () => (await lag()) === 0, 15_000, 100);
    process.stdout.write(`readiness: not ready ${notReadyAfter} ms after the batch hung (READY_STALL_SECONDS = ${STALL_MS / 1000})\n`);
  });
});
