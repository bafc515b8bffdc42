import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { createDecoder } from '../../src/adapters/avro/codec';
import { avroTypeOptions } from '../../src/adapters/avro/schemas';
import type { TestBroker } from '../helpers/kafka';
import { generateEvents, toNdjsonLine } from '../../src/domain/sample';
import { partitionKey, validateEvent, type UsageEvent } from '../../src/domain/usage-event';
import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import { start as startRegistry } from '../fakes/schema-registry';
import { runCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';

const COUNT = 10_000;
const PARTITIONS = 4;

/** Reads every message of `topic` from the beginning with a plain kafkajs consumer. */
async function consumeAll(broker: TestBroker, topic: string, expected: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = kafkaFor(broker).consumer({ groupId: `verify-${topic}-${Date.now()}`, ...TEST_CONSUMER_TIMINGS });
  const got: { partition: number; message: KafkaMessage }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length}/${expected} messages arrived`)), 60_000);
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) got.push({ partition: batch.partition, message });
        if (got.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return got;
}

describe('meterline publish', () => {
  let broker: TestBroker;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  let file: string;
  let events: UsageEvent[];
  const badLines = new Map<number, RegExp>();

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: 'so.events', partitions: PARTITIONS },
      { name: 'cf.events', partitions: PARTITIONS },
      { name: 'bad.events', partitions: PARTITIONS },
    ], { kind: 'kafka' });
    registry = await startRegistry();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-publish-'));
    // 10,000 events: some v2 (with `source`), some exact copies (which must share a partition).
    events = generateEvents({ count: COUNT, seed: 7, duplicateRate: 0.05, start: Date.now() - 86_400_000, spanMs: 86_400_000 }).map((e, i) =>
      i % 3 === 0 ? { ...e, source: `svc-${i % 5}` } : e,
    );
    file = path.join(dir, 'events.ndjson');
    fs.writeFileSync(file, events.map(toNdjsonLine).join('\n') + '\n');
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
    await registry?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const env = (topic: string, extra: NodeJS.ProcessEnv = {}) => ({ KAFKA_BROKERS: broker.bootstrapServers.join(','), KAFKA_TOPIC: topic, ...extra });

  async function verifyTopic(topic: string, decoderRegistry?: SchemaRegistry) {
    const messages = await consumeAll(broker, topic, COUNT);
    expect(messages).toHaveLength(COUNT);
    const decoder = createDecoder(decoderRegistry ? { registry: decoderRegistry } : {});
    const decoded = await decoder.decodeMany(messages.map((m) => m.message.value));
    const byKeyPartition = new Map<string, number>();
    const received: UsageEvent[] = [];
    decoded.forEach((d, i) => {
      if (!d.ok) throw new Error(`message ${i} did not decode: ${d.reason}`);
      const v = validateEvent({ ...d.record }, { now: Date.now(), maxFutureSkewMs: 300_000 });
      if (!v.ok) throw new Error(v.reason);
      received.push(v.event);
      const { partition, message } = messages[i]!;
      expect(message.key!.toString()).toBe(partitionKey(v.event));
      // Every copy of one event (same tenant and id) is in the same partition.
      const seen = byKeyPartition.get(message.key!.toString());
      if (seen !== undefined) expect(partition).toBe(seen);
      byKeyPartition.set(message.key!.toString(), partition);
    });
    const sortKey = (e: UsageEvent) => `${e.tenant}/${e.id}/${e.timestamp}`;
    const expected = [...events].map((e) => ({ ...e, properties: { ...e.properties } })).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    received.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
    // Every field of every event, compared to the input.
    expect(received.map((e) => ({ ...e, properties: { ...e.properties } }))).toEqual(expected);
    return new Set(messages.map((m) => m.partition)).size;
  }

  it('publishes 10,000 events in Avro single-object encoding, every field intact, copies co-partitioned', async () => {
    const r = await runCli(['publish', '--file', file, '--json'], { env: env('so.events') });
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ published: COUNT, rejected: 0 });
    const partitionsUsed = await verifyTopic('so.events');
    expect(partitionsUsed).toBe(PARTITIONS);
  });

  it('publishes the same events in Confluent wire format through a schema registry', async () => {
    const r = await runCli(['publish', '--json'], { env: env('cf.events', { SCHEMA_REGISTRY_URL: registry.url }), input: fs.readFileSync(file, 'utf8') });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ published: COUNT, rejected: 0 });
    const first = (await consumeAll(broker, 'cf.events', 1))[0]!.message.value!;
    expect(first[0]).toBe(0x00); // Confluent magic byte, then a 4-byte schema id
    await verifyTopic('cf.events', new SchemaRegistry({ host: registry.url }, { forSchemaOptions: avroTypeOptions() }));
  });

  it('rejects bad lines with their line number and reason, and still publishes the good lines around them', async () => {
    const good = generateEvents({ count: 6, seed: 99 }).map(toNdjsonLine);
    const lines = [
      good[0]!,
      '{"id": "broken", ',
      JSON.stringify({ tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: Date.now() }),
      good[1]!,
      JSON.stringify({ id: 'nan', tenant: 't', customer: 'c', meter: 'api_calls', value: 'NaN', timestamp: Date.now() }),
      JSON.stringify({ id: 'big', tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: Date.now(), properties: { blob: 'x'.repeat(10 * 1024 * 1024) } }),
      good[2]!,
      JSON.stringify({ id: 'm', tenant: 't', customer: 'c', meter: 'api calls!', value: '1', timestamp: Date.now() }),
      good[3]!,
    ];
    badLines.set(2, /invalid JSON/).set(3, /missing id/).set(5, /not a decimal/).set(6, /longer than 1048576 bytes/).set(8, /meter name must be/);
    const r = await runCli(['publish', '--json'], { env: env('bad.events'), input: lines.join('\n') + '\n' });
    expect(r.code).toBe(1);
    const summary = JSON.parse(r.stdout) as { published: number; rejected: number; rejections: { line: number; reason: string }[] };
    expect(summary.published).toBe(4);
    expect(summary.rejected).toBe(5);
    expect(summary.rejections.map((x) => x.line)).toEqual([...badLines.keys()]);
    for (const rej of summary.rejections) expect(rej.reason).toMatch(badLines.get(rej.line)!);
    const published = await consumeAll(broker, 'bad.events', 4);
    const ids = (await createDecoder({}).decodeMany(published.map((m) => m.message.value))).map((d) => (d.ok ? d.record.id : null));
    expect(ids.sort()).toEqual(good.slice(0, 4).map((l) => JSON.parse(l).id).sort());
  });

  it('exits non-zero with a clear message when no Kafka is configured or running', async () => {
    const r = await runCli(['publish', '--file', file], { env: { METERLINE_DATA_DIR: path.join(dir, 'nothing-here') } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no Kafka to talk to: set KAFKA_BROKERS/);
  });
});
