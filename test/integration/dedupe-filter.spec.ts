/**
 * The in-memory dedupe filter in the real ingest path: it is built from the ledger at start-up,
 * recognises copies in the same partition, in another partition and after a restart, learns the
 * keys another worker stored, and saves the ledger lookup for the keys it proves absent.
 */
import type { Kafka, Producer } from 'kafkajs';
import { createDecoder, createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createLedgerKeySource, loadLedgerKeys } from '../../src/adapters/clickhouse/ledger-keys';
import { createLedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import type { TestBroker } from '../helpers/kafka';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import { partitionKey, type UsageEvent } from '../../src/domain/usage-event';
import { startDedupeFilter } from '../../src/pipeline/dedupe-filter-sync';
import type { IngestDeps } from '../../src/pipeline/ingest-batch';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics, type Metrics } from '../../src/runtime/metrics';
import { newWorkerIdentity } from '../../src/runtime/worker-identity';
import { count, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

const TOPIC = 'usage.events';
const OTHER_TOPIC = 'usage.events.other';
const DAY = 86_400_000;
const WINDOW = 35 * DAY;
const NOW = Date.now();
const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'sum' }] });
if (!parsed.ok) throw new Error('bad test catalog');
const meters = parsed.catalog;

let seq = 0;
function ev(tenant: string, over: Partial<UsageEvent> = {}): UsageEvent {
  seq += 1;
  return { id: `f${seq}`, tenant, customer: 'c1', meter: 'api_calls', value: '2', timestamp: NOW - 60_000, properties: {}, source: null, ...over };
}

describe('dedupe filter in the ingest path', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let ch: TestClickHouse;
  let publisher: Publisher;
  let rawProducer: Producer;
  const encoder = createSingleObjectEncoder();
  const workers: IngestWorker[] = [];

  const deps = (metrics: Metrics, ingestedBy: string): IngestDeps => ({
    decoder: createDecoder({}),
    meters: () => meters,
    ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: WINDOW, ingestedBy }),
    clock: Date.now,
    maxFutureSkewMs: 300_000,
    metrics,
  });
  const startWorker = async (topic: string, groupId: string) => {
    const metrics = createMetrics({ defaultMetrics: false });
    const ingestedBy = newWorkerIdentity();
    const dedupeFilter = await startDedupeFilter({
      ingestedBy,
      options: { capacity: 100_000, bitsPerKey: 10, dedupeWindowMs: WINDOW, maxFutureSkewMs: 300_000 },
      keys: createLedgerKeySource(ch.client, ch.database),
      clock: Date.now,
      metrics,
      logger: silentLogger(),
    });
    const worker = await startIngestWorker({ kafka, topic, groupId, deps: deps(metrics, ingestedBy), dedupeFilter, logger: silentLogger(), consumer: TEST_CONSUMER_TIMINGS });
    workers.push(worker);
    return { worker, metrics };
  };
  const value = async (m: Metrics, name: 'dedupeFilterChecked' | 'dedupeFilterMaybe' | 'dedupeFilterKeys') => (await m[name].get()).values[0]?.value ?? 0;
  const ledgerCount = (tenant: string) => count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events WHERE tenant = {t:String}`, { t: tenant });
  const dupes = (tenant: string) => count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL WHERE tenant = {t:String}`, { t: tenant });

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 4 },
      { name: OTHER_TOPIC, partitions: 2 },
    ]);
    kafka = kafkaFor(broker);
    ch = await testClickHouse('dedupe_filter');
    publisher = await createPublisher({ kafka, topic: TOPIC, encoder });
    rawProducer = kafka.producer();
    await rawProducer.connect();
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await publisher?.close();
    await rawProducer?.disconnect();
    await ch?.close();
    await broker?.stop();
  });

  it('loads, page by page, exactly the keys whose event time is within its coverage', async () => {
    const ledger = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: WINDOW });
    const meter = meters.get('api_calls')!;
    const events = Array.from({ length: 2_500 }, (_, i) =>
      ev(`load\\${i % 3}`, { id: `id\t${i}'`, timestamp: i % 5 === 0 ? NOW - 80 * DAY : NOW - i * 1000 }),
    );
    await ledger.insertNew(
      events.map((e, i) => {
        const candidate = candidateOf({ topic: 'load', partition: 0, offset: String(i) }, e, meter);
        return { candidate, lateness: decideLateness(e.timestamp, meter, null) };
      }),
      NOW,
    );
    const seen: string[] = [];
    const n = await loadLedgerKeys(ch.client, ch.database, NOW - 36 * DAY, (tenant, id) => seen.push(`${tenant}/${id}`), 700);
    const expected = events.filter((e) => e.timestamp >= NOW - 36 * DAY).map((e) => `${e.tenant}/${e.id}`);
    expect(n).toBe(expected.length);
    expect(seen.sort()).toEqual(expected.sort());
  });

  it("catches up from the by_ingested projection: exactly others' keys since the instant, reading only recent granules of a merged part", async () => {
    // Twenty writes a second apart by another worker, and one by this one, merged into a single
    // part ordered by (tenant, id): a second's keys are spread over all its granules there.
    // A ledger of its own: one month's events, so one partition, so one part once merged.
    const own = await testClickHouse('by_ingested');
    const meter = meters.get('api_calls')!;
    const other = createLedgerStore(own.client, own.database, { dedupeWindowMs: WINDOW, ingestedBy: 'other-worker' });
    const self = createLedgerStore(own.client, own.database, { dedupeWindowMs: WINDOW, ingestedBy: 'this-worker' });
    const T0 = NOW - 600_000;
    // Ids as producers make them (random, say): sorted by id, the writes interleave.
    const idOf = (i: number, ingestedAt: number) => `k${String(i).padStart(5, '0')}-${ingestedAt}`;
    const write = (ledger: typeof other, tenant: string, n: number, ingestedAt: number) =>
      ledger.insertNew(
        Array.from({ length: n }, (_, i) => {
          const e = ev(tenant, { id: idOf(i, ingestedAt) });
          return { candidate: candidateOf({ topic: 'catch-up', partition: 0, offset: String(i) }, e, meter), lateness: decideLateness(e.timestamp, meter, null) };
        }),
        ingestedAt,
      );
    for (let w = 0; w < 20; w += 1) await write(other, 't-by-ingested', 1_100, T0 + w * 1_000);
    await write(self, 't-by-ingested', 50, T0 + 19_000);
    await own.client.command({ query: `OPTIMIZE TABLE ${own.database}.usage_events FINAL` });
    expect(await count(own.client, `SELECT count() AS c FROM system.parts WHERE database = {db:String} AND table = 'usage_events' AND active`, { db: own.database })).toBe(1);

    const source = createLedgerKeySource(own.client, own.database, { proveProjection: true });
    const keys = await source.ingestedSince(T0 + 18_000, 'this-worker');
    const expected = [18, 19].flatMap((w) => Array.from({ length: 1_100 }, (_, i) => `t-by-ingested/${idOf(i, T0 + w * 1_000)}`));
    expect(keys.map(([tenant, id]) => `${tenant}/${id}`).sort()).toEqual(expected.sort());

    // The granules read follow the recent writes (2 of 20 seconds), not the part's size.
    const plan = await (
      await own.client.query({
        query: `EXPLAIN indexes = 1 SELECT tenant, id FROM ${own.database}.usage_events
                WHERE ingested_at >= fromUnixTimestamp64Milli(${T0 + 18_000}) AND ingested_by != 'this-worker'`,
        format: 'TabSeparatedRaw',
      })
    ).text();
    expect(plan).toContain('ReadFromMergeTree (by_ingested)');
    const [selected, total] = /PrimaryKey[\s\S]*?Granules: (\d+)\/(\d+)/.exec(plan)!.slice(1).map(Number);
    expect(total).toBeGreaterThanOrEqual(20);
    expect(selected).toBeLessThanOrEqual(5);
    await own.close();
  });

  it('recognises copies (same partition, another partition, after a restart) and skips the lookup for new keys', async () => {
    const { worker, metrics } = await startWorker(TOPIC, 'filter-a');
    const events = Array.from({ length: 200 }, () => ev('t-filter'));
    await publisher.publish(events);
    await waitFor('200 stored', async () => (await ledgerCount('t-filter')) === 200);
    // Nearly every new key was proven absent: the ledger saw only the rare false positives.
    const checked = await value(metrics, 'dedupeFilterChecked');
    const maybe = await value(metrics, 'dedupeFilterMaybe');
    expect(checked).toBeGreaterThanOrEqual(200);
    expect(maybe).toBeLessThan(checked * 0.1);
    expect(await value(metrics, 'dedupeFilterKeys')).toBeGreaterThanOrEqual(200);

    // A copy with its proper key (same partition) and one a foreign producer sent elsewhere.
    await publisher.publish([events[0]!]);
    const copy = events[1]!;
    const wrongPartition = (await encoder.encode(copy)) as Buffer;
    await rawProducer.send({ topic: TOPIC, messages: [{ key: 'not-the-key', value: wrongPartition, partition: 3 }] });
    await waitFor('two copies recognised', async () => (await dupes('t-filter')) === 2);

    // Restart: the new filter is rebuilt from the ledger and still recognises copies.
    await worker.stop();
    workers.splice(workers.indexOf(worker), 1);
    const restarted = await startWorker(TOPIC, 'filter-a');
    expect(await value(restarted.metrics, 'dedupeFilterKeys')).toBeGreaterThanOrEqual(200);
    await publisher.publish([events[2]!, events[3]!]);
    await waitFor('copies after the restart recognised', async () => (await dupes('t-filter')) === 4);
    expect(await ledgerCount('t-filter')).toBe(200);
    await restarted.worker.stop();
    workers.splice(workers.indexOf(restarted.worker), 1);
  });

  it('learns the keys another worker stored after it started (catch-up), so their copies are not taken as new', async () => {
    // The group of the previous test: its history is committed, so a reads only what follows.
    const { worker: a } = await startWorker(TOPIC, 'filter-a');
    const { worker: b } = await startWorker(OTHER_TOPIC, 'filter-catch-up-b');
    const e = ev('t-catch-up');
    const bytes = await encoder.encode(e);
    await rawProducer.send({ topic: OTHER_TOPIC, messages: [{ key: partitionKey(e), value: bytes }] });
    await waitFor('stored by worker b', async () => (await ledgerCount('t-catch-up')) === 1);
    // Its totals count it once the unit is committed, which follows the ledger write.
    await waitFor('worker b counted it as accepted', () => b.totals.accepted >= 1, 10_000);
    // Worker a started before b stored it; a copy now reaches a's topic.
    await new Promise((r) => setTimeout(r, 1_500));
    await rawProducer.send({ topic: TOPIC, messages: [{ key: partitionKey(e), value: bytes }] });
    await waitFor('copy recognised by worker a', async () => (await dupes('t-catch-up')) === 1);
    expect(await ledgerCount('t-catch-up')).toBe(1);
    expect(a.totals.duplicates).toBe(1);
  });

  it('learns the keys a redrive stored under its own partitions (another writer, same topic), so their copies are not taken as new', async () => {
    for (const w of workers.splice(0)) await w.stop();
    const { worker } = await startWorker(TOPIC, 'filter-a');
    // `meterline ledger redrive` stores an event under its original offset, in a partition this worker owns.
    const e = ev('t-redriven');
    const meter = meters.get('api_calls')!;
    const redrive = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: WINDOW });
    const candidate = candidateOf({ topic: TOPIC, partition: 0, offset: '999999' }, e, meter);
    await redrive.insertNew([{ candidate, lateness: decideLateness(e.timestamp, meter, null) }], Date.now());
    await new Promise((r) => setTimeout(r, 1_500));
    await publisher.publish([e]);
    await waitFor('copy of the redriven event recognised', async () => (await dupes('t-redriven')) === 1);
    expect(await ledgerCount('t-redriven')).toBe(1);
    expect(worker.totals.duplicates).toBe(1);
  });
});
