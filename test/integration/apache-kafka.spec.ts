import fs from 'node:fs';
import path from 'node:path';
import { CompressionTypes, type Kafka } from 'kafkajs';
import { startApacheKafka, type ApacheKafka } from '../../src/dev/apache-kafka/broker';
import { kafkaCacheDir, provisionKafka } from '../../src/dev/apache-kafka/provision';
import { kafkaVersionFromEnv } from '../../src/dev/apache-kafka/versions';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';

// kafkajs 2.2.4 against a real Apache Kafka (KAFKA_VERSION, default the newest tested 4.x): every
// protocol call meterline makes. Kafka 4 removed old API versions (KIP-896); kafkajs negotiates
// per API, and this suite is the proof that what it picks is still served.

const VERSION = kafkaVersionFromEnv();

describe(`Apache Kafka ${VERSION} with kafkajs`, () => {
  let broker: ApacheKafka;
  let kafka: Kafka;
  let startMs: number;

  beforeAll(async () => {
    const t0 = Date.now();
    broker = await startApacheKafka({ version: VERSION, topics: [{ name: 'events', partitions: 4 }] });
    startMs = Date.now() - t0;
    kafka = kafkaFor(broker);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
  });

  it('a provisioned version is reused without Maven or the network', async () => {
    expect(fs.existsSync(path.join(kafkaCacheDir(VERSION), 'libs', '.complete'))).toBe(true);
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent'; // no mvn, no java: a second provisioning must need neither
    try {
      await expect(provisionKafka(VERSION)).resolves.toBe(path.join(kafkaCacheDir(VERSION), 'libs'));
    } finally {
      process.env.PATH = saved;
    }
    process.stdout.write(`apache-kafka ${VERSION}: started and ready (produce + group join) in ${startMs} ms\n`);
  });

  it('idempotent produce with acks=all, gzip, keys and headers; fetch reads it back in order per partition', async () => {
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const messages = Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 40}`, value: `v${i}`, headers: { n: String(i) } }));
    await producer.send({ topic: 'events', acks: -1, compression: CompressionTypes.GZIP, messages });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'read-back', ...TEST_CONSUMER_TIMINGS });
    await consumer.connect();
    await consumer.subscribe({ topic: 'events', fromBeginning: true });
    const seen: { key: string; n: number; partition: number }[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            seen.push({ key: message.key!.toString(), n: Number(message.headers!.n!.toString()), partition });
            if (seen.length === 200) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();
    // One key, one partition; within a partition, publication order.
    const partitionsOfKey = new Map<string, Set<number>>();
    for (const s of seen) partitionsOfKey.set(s.key, (partitionsOfKey.get(s.key) ?? new Set()).add(s.partition));
    expect([...partitionsOfKey.values()].every((p) => p.size === 1)).toBe(true);
    for (const p of [0, 1, 2, 3]) {
      const ns = seen.filter((s) => s.partition === p).map((s) => s.n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
    expect(new Set(seen.map((s) => s.n)).size).toBe(200);
  });

  it('consumer groups: manual commits are fetched by admin, survive a member change, and a new member resumes there', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const end = await admin.fetchTopicOffsets('events');
      expect(end.reduce((n, p) => n + Number(p.high), 0)).toBe(200);
      const metadata = await admin.fetchTopicMetadata({ topics: ['events'] });
      expect(metadata.topics[0]!.partitions).toHaveLength(4);

      const first = kafka.consumer({ groupId: 'commits', ...TEST_CONSUMER_TIMINGS });
      await first.connect();
      await first.subscribe({ topic: 'events', fromBeginning: true });
      let firstRead = 0;
      await new Promise<void>((resolve, reject) => {
        first
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              // Commit only the first half of each partition: the rest is for the next member.
              const half = Math.floor(Number(batch.highWatermark) / 2);
              const upTo = batch.messages.filter((m) => Number(m.offset) < half);
              firstRead += upTo.length;
              await first.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: String(half) }]);
              if (firstRead >= end.reduce((n, p) => n + Math.floor(Number(p.high) / 2), 0)) resolve();
            },
          })
          .catch(reject);
      });
      await first.disconnect();
      const committed = (await admin.fetchOffsets({ groupId: 'commits', topics: ['events'] }))[0]!.partitions;
      for (const p of end) expect(committed.find((c) => c.partition === p.partition)!.offset).toBe(String(Math.floor(Number(p.high) / 2)));

      const second = kafka.consumer({ groupId: 'commits', ...TEST_CONSUMER_TIMINGS });
      await second.connect();
      await second.subscribe({ topic: 'events', fromBeginning: true });
      const rest = end.reduce((n, p) => n + Number(p.high) - Math.floor(Number(p.high) / 2), 0);
      let secondRead = 0;
      let lowest = Infinity;
      await new Promise<void>((resolve, reject) => {
        second
          .run({
            eachMessage: async ({ message, partition }) => {
              const half = Math.floor(Number(end.find((p) => p.partition === partition)!.high) / 2);
              lowest = Math.min(lowest, Number(message.offset) - half);
              secondRead += 1;
              if (secondRead === rest) resolve();
            },
          })
          .catch(reject);
      });
      await second.disconnect();
      expect(lowest).toBe(0); // resumed exactly at each committed offset: nothing re-read, nothing skipped
    } finally {
      await admin.disconnect();
    }
  });

  it('answers offsets by timestamp (the dev broker does not)', async () => {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: 'events', acks: -1, messages: [{ key: 'old', value: 'x', timestamp: String(Date.parse('2026-01-01T00:00:00Z')) }] });
    const before = Date.now();
    await producer.send({ topic: 'events', acks: -1, messages: [{ key: 'new', value: 'y', timestamp: String(before + 1) }] });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const byTime = await admin.fetchTopicOffsetsByTimestamp('events', before);
    const end = await admin.fetchTopicOffsets('events');
    await admin.disconnect();
    // Exactly one partition has a record at or after `before`; the others answer their end.
    const notAtEnd = byTime.filter((p) => p.offset !== end.find((e) => e.partition === p.partition)!.high);
    expect(notAtEnd).toHaveLength(1);
  });
});
