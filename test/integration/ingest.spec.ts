import type { Kafka, Producer } from 'kafkajs';
import { createSingleObjectEncoder, createDecoder } from '../../src/adapters/avro/codec';
import { createLedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import type { TestBroker } from '../helpers/kafka';
import { createDeadLetterSink, DLQ_HEADERS, type DeadLetterSink } from '../../src/adapters/kafka/dlq';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { parseMeterCatalog, type MeterCatalog } from '../../src/domain/meters';
import { partitionKey, type UsageEvent } from '../../src/domain/usage-event';
import type { IngestDeps } from '../../src/pipeline/ingest-batch';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import { redriveDeadLetters } from '../../src/pipeline/redrive';
import { createLogger, silentLogger } from '../../src/runtime/logger';
import { count, rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

const TOPIC = 'usage.events';
const DLQ = 'usage.events.dlq';
const NOW = Date.now();

function catalog(names: string[]): MeterCatalog {
  const r = parseMeterCatalog({ meters: names.map((name) => ({ name, aggregation: 'sum' })) });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.catalog;
}

let seq = 0;
function ev(tenant: string, over: Partial<UsageEvent> = {}): UsageEvent {
  seq += 1;
  return { id: `e${seq}`, tenant, customer: 'c1', meter: 'api_calls', value: '1.25', timestamp: NOW - 60_000, properties: {}, source: null, ...over };
}

describe('ingest: the dedupe-and-enrich consumer', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let ch: TestClickHouse;
  let publisher: Publisher;
  let rawProducer: Producer;
  let deadLetters: DeadLetterSink;
  let worker: IngestWorker | undefined;
  let meters = catalog(['api_calls']);
  let deps: IngestDeps;
  const encoder = createSingleObjectEncoder();

  const startWorker = async (groupId = 'ingest-test') => {
    worker = await startIngestWorker({ kafka, topic: TOPIC, groupId, deps, logger: process.env.TEST_LOGS ? createLogger({ level: 'debug' }) : silentLogger(), consumer: TEST_CONSUMER_TIMINGS });
    return worker;
  };
  const ledgerCount = (tenant: string) => count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events WHERE tenant = {t:String}`, { t: tenant });
  const dupes = (tenant: string, kind = 'duplicate') =>
    count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL WHERE tenant = {t:String} AND kind = {k:String}`, { t: tenant, k: kind });
  const consumedAtLeast = (n: number) => waitFor(`${n} messages consumed`, () => (worker?.totals.consumed ?? 0) >= n);

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 4 },
      { name: DLQ, partitions: 4 },
    ], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    ch = await testClickHouse('ingest');
    publisher = await createPublisher({ kafka, topic: TOPIC, encoder });
    rawProducer = kafka.producer();
    await rawProducer.connect();
    deadLetters = await createDeadLetterSink(kafka, DLQ);
    deps = {
      decoder: createDecoder({}),
      meters: () => meters,
      ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }),
      deadLetters,
      clock: Date.now,
      maxFutureSkewMs: 300_000,
    };
    await startWorker();
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await worker?.stop();
    await publisher?.close();
    await rawProducer?.disconnect();
    await deadLetters?.close();
    await ch?.close();
    await broker?.stop();
  });

  it('stores each event once with its source offset and ingest time, and counts a copy in the same batch as a duplicate', async () => {
    const base = worker!.totals.consumed;
    const a = ev('t-batch');
    const b = ev('t-batch');
    await publisher.publish([a, a, b]);
    await consumedAtLeast(base + 3);
    expect(await ledgerCount('t-batch')).toBe(2);
    expect(await dupes('t-batch')).toBe(1);
    const [row] = await rows<{ topic: string; offset: string; ingested_at: string; value: string; meter_aggregation: string; meter_definition_hash: string }>(
      ch.client,
      `SELECT topic, toString(offset) AS offset, toString(ingested_at) AS ingested_at, toString(value) AS value, meter_aggregation, meter_definition_hash
       FROM ${ch.database}.usage_events WHERE tenant = 't-batch' AND id = {id:String}`,
      { id: a.id },
    );
    expect(row).toMatchObject({ topic: TOPIC, value: '1.25', meter_aggregation: 'sum', meter_definition_hash: meters.get('api_calls')!.definitionHash });
    expect(Date.parse(row!.ingested_at.replace(' ', 'T') + 'Z')).toBeGreaterThan(NOW - 5_000);
  });

  it('counts a copy arriving in a later batch as a duplicate', async () => {
    const a = ev('t-later');
    await publisher.publish([a]);
    await waitFor('first copy stored', async () => (await ledgerCount('t-later')) === 1);
    await publisher.publish([a]);
    await waitFor('second copy classified', async () => (await dupes('t-later')) === 1);
    expect(await ledgerCount('t-later')).toBe(1);
  });

  it('recognises a copy that a foreign producer sent to another partition', async () => {
    const a = ev('t-part');
    const value = await encoder.encode(a);
    await rawProducer.send({ topic: TOPIC, messages: [{ key: partitionKey(a), value, partition: 0 }] });
    await waitFor('first copy stored', async () => (await ledgerCount('t-part')) === 1);
    await rawProducer.send({ topic: TOPIC, messages: [{ key: 'some-other-key', value, partition: 3 }] });
    await waitFor('cross-partition copy classified', async () => (await dupes('t-part')) === 1);
    expect(await ledgerCount('t-part')).toBe(1);
  });

  it('keeps the first write on a conflict (same key, different body) and records the conflicting copy', async () => {
    const a = ev('t-conflict', { value: '5' });
    await publisher.publish([a]);
    await waitFor('original stored', async () => (await ledgerCount('t-conflict')) === 1);
    await publisher.publish([{ ...a, value: '500' }]);
    await waitFor('conflict recorded', async () => (await dupes('t-conflict', 'conflict')) === 1);
    const [stored] = await rows<{ v: string }>(ch.client, `SELECT toString(value) AS v FROM ${ch.database}.usage_events WHERE tenant = 't-conflict'`);
    expect(stored!.v).toBe('5');
    const [conflict] = await rows<{ event: string }>(ch.client, `SELECT event FROM ${ch.database}.duplicate_events FINAL WHERE tenant = 't-conflict'`);
    expect(JSON.parse(conflict!.event)).toMatchObject({ id: a.id, value: '500' });
  });

  it('recognises copies published while the worker was down, after a restart of the group', async () => {
    const a = ev('t-restart');
    await publisher.publish([a]);
    await waitFor('original stored', async () => (await ledgerCount('t-restart')) === 1);
    await worker!.stop();
    await publisher.publish([a, ev('t-restart')]);
    await startWorker();
    await waitFor('restart batch processed', async () => (await ledgerCount('t-restart')) === 2 && (await dupes('t-restart')) === 1, 30_000);
  });

  it('dead-letters bad input with a reason (DLQ topic with headers + rejected_events) and keeps running', async () => {
    const before = worker!.totals.rejected;
    const unknownMeter = ev('t-bad', { meter: 'gpu_seconds' });
    await rawProducer.send({
      topic: TOPIC,
      messages: [
        { key: 'junk', value: Buffer.from('definitely not avro') },
        { key: 'empty', value: Buffer.alloc(0) },
        { key: partitionKey(unknownMeter), value: await encoder.encode(unknownMeter) },
      ],
    });
    await waitFor('three rejections', () => worker!.totals.rejected >= before + 3);
    const rejected = await rows<{ reason_code: string; reason: string }>(
      ch.client,
      `SELECT reason_code, reason FROM ${ch.database}.rejected_events FINAL WHERE status = 'rejected' ORDER BY reason_code`,
    );
    expect(rejected.map((r) => r.reason_code)).toEqual(expect.arrayContaining(['bad_magic', 'empty', 'unknown_meter']));
    expect(rejected.find((r) => r.reason_code === 'unknown_meter')!.reason).toBe('unknown meter "gpu_seconds"');

    const dlqConsumer = kafka.consumer({ groupId: `dlq-check-${Date.now()}`, ...TEST_CONSUMER_TIMINGS });
    const dlqMessages: { value: Buffer | null; headers: Record<string, string> }[] = [];
    await dlqConsumer.connect();
    await dlqConsumer.subscribe({ topic: DLQ, fromBeginning: true });
    void dlqConsumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
        dlqMessages.push({ value: message.value, headers });
      },
    });
    await waitFor('dead letters on the DLQ topic', () => dlqMessages.length >= 3);
    await dlqConsumer.disconnect();
    const junk = dlqMessages.find((m) => m.headers[DLQ_HEADERS.reasonCode] === 'bad_magic')!;
    expect(junk.value!.toString()).toBe('definitely not avro');
    expect(junk.headers[DLQ_HEADERS.topic]).toBe(TOPIC);
    expect(junk.headers[DLQ_HEADERS.offset]).toMatch(/^\d+$/);

    // Still consuming after bad input.
    const good = ev('t-bad');
    await publisher.publish([good]);
    await waitFor('good event after bad ones', async () => (await ledgerCount('t-bad')) === 1);
  });

  it('redrives dead letters once their cause is fixed, and a second redrive changes nothing', async () => {
    const lost = ev('t-redrive', { meter: 'tokens' });
    await publisher.publish([lost, lost]);
    await waitFor('unknown meter dead-lettered', async () =>
      (await count(ch.client, `SELECT count() AS c FROM ${ch.database}.rejected_events FINAL WHERE tenant = 't-redrive'`)) === 2,
    );
    meters = catalog(['api_calls', 'tokens']); // the operator adds the meter
    const redriveDeps = { ...deps, deadLetters: undefined };
    const first = await redriveDeadLetters(ch.client, ch.database, redriveDeps, { reason: 'unknown_meter' });
    expect(first).toMatchObject({ accepted: 1, duplicates: 1 });
    expect(await ledgerCount('t-redrive')).toBe(1);
    const second = await redriveDeadLetters(ch.client, ch.database, redriveDeps, { reason: 'unknown_meter' });
    expect(second.accepted).toBe(0);
    expect(await ledgerCount('t-redrive')).toBe(1);
    // Garbage stays a dead letter however often it is redriven.
    const third = await redriveDeadLetters(ch.client, ch.database, redriveDeps, {});
    expect(third.stillRejectedByReason).toMatchObject({ bad_magic: 1, empty: 1 });
  });

  it('re-reading the whole topic from the beginning (a new group) stores nothing new', async () => {
    await worker!.stop();
    const before = await count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events`);
    const dupBefore = await count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL`);
    const offsets = await kafka.admin().fetchTopicOffsets(TOPIC);
    const total = offsets.reduce((n, p) => n + Number(p.high), 0);
    const replay = await startWorker(`replay-${Date.now()}`);
    const partitionsPerUnit: number[] = [];
    replay.onUnit((_outcome, positions) => partitionsPerUnit.push(positions.size));
    await waitFor('whole topic re-read', () => replay.totals.consumed >= total, 60_000);
    expect(replay.totals.accepted).toBe(0);
    expect(await count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events`)).toBe(before);
    expect(await count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL`)).toBe(dupBefore);
    expect(replay.totals.redelivered + replay.totals.duplicates + replay.totals.conflicts + replay.totals.rejected).toBe(total);
    // The batches a fetch returns for several partitions are stored as one unit (one lookup, one
    // INSERT per table, one commit), not one unit per partition.
    expect(offsets.filter((p) => Number(p.high) > 0)).toHaveLength(4);
    expect(partitionsPerUnit).toHaveLength(replay.totals.units);
    expect(Math.max(...partitionsPerUnit)).toBeGreaterThan(1);
  });

  it('reports the messages still waiting on its partitions after each unit (what paces the pusher), 0 once caught up', async () => {
    await worker!.stop();
    // Many small record batches, read a few KB per partition per fetch: a backlog for several units.
    for (let i = 0; i < 40; i += 1) await publisher.publish(Array.from({ length: 20 }, () => ev('t-backlog')));
    const offsets = await kafka.admin().fetchTopicOffsets(TOPIC);
    const total = offsets.reduce((n, p) => n + Number(p.high), 0);
    worker = await startIngestWorker({ kafka, topic: TOPIC, groupId: `backlog-${Date.now()}`, deps, logger: silentLogger(), consumer: { ...TEST_CONSUMER_TIMINGS, maxBytesPerPartition: 4_096 } });
    const reader = worker;
    const afterUnit: { backlog: number; waiting: number }[] = [];
    const waiting = new Map<number, number>();
    reader.onUnit((_outcome, positions) => {
      for (const [p, pos] of positions) waiting.set(p, Number(pos.highWatermark) - Number(pos.next));
      afterUnit.push({ backlog: reader.backlog(), waiting: [...waiting.values()].reduce((a, b) => a + b, 0) });
    });
    await waitFor('whole topic re-read', () => reader.totals.consumed >= total, 60_000);
    expect(reader.totals.units).toBeGreaterThan(2);
    expect(afterUnit[0]!.backlog).toBeGreaterThan(0);
    for (const u of afterUnit) expect(u.backlog).toBe(u.waiting);
    expect(reader.backlog()).toBe(0);
  });
});
