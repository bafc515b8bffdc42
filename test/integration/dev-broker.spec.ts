import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Partitioners, type Consumer, type Kafka, type Producer } from 'kafkajs';
import {
  DEV_BROKER_WARNING,
  readBrokerState,
  startDetachedDevBroker,
  startDevBroker,
  stopDetachedDevBroker,
  writeBrokerState,
  type DevBroker,
} from '../../src/dev/dev-broker/broker';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';

interface Received {
  partition: number;
  offset: number;
  key: string;
  value: string;
}

/** Runs `consumer` on `topic` from the beginning until `count` messages arrived. */
async function consumeUntil(consumer: Consumer, topic: string, count: number, timeoutMs = 20_000): Promise<Received[]> {
  const received: Received[] = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      received.push({ partition, offset: Number(message.offset), key: message.key!.toString(), value: message.value!.toString() });
      if (received.length >= count) done();
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`got ${received.length}/${count} messages from ${topic} in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([finished, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return received;
}

function idempotentProducer(kafka: Kafka): Producer {
  return kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
}

/** Message i of a run: 50 distinct keys, so every partition gets several keys. */
const message = (i: number) => ({ key: `key-${i % 50}`, value: JSON.stringify({ i, key: `key-${i % 50}` }) });

describe('dev broker (librdkafka mock cluster)', () => {
  let broker: DevBroker;
  let kafka: Kafka;

  beforeAll(async () => {
    broker = await startDevBroker({ topics: [
      { name: 'events', partitions: 4 },
      { name: 'resume', partitions: 2 },
      { name: 'retries', partitions: 1 },
      { name: 'catchup', partitions: 1 },
    ] });
    kafka = kafkaFor(broker);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
  });

  test('listens on loopback and answers commands', async () => {
    expect(DEV_BROKER_WARNING).toMatch(/NOT FOR PRODUCTION/);
    expect(broker.pid).toBeGreaterThan(0);
    expect(broker.bootstrapServers).toHaveLength(1);
    expect(broker.bootstrapServers[0]).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(broker.command('ping')).resolves.toBe('OK');
    await expect(broker.command('no_such_command')).rejects.toThrow(/unknown command/);
    // An error reply leaves the line protocol in step.
    await expect(broker.command('ping')).resolves.toBe('OK');
  });

  test('delivers 1000 keyed messages from an idempotent producer to a consumer group, in partition order', async () => {
    const producer = idempotentProducer(kafka);
    await producer.connect();
    for (let batch = 0; batch < 10; batch++) {
      const messages = Array.from({ length: 100 }, (_, j) => message(batch * 100 + j));
      await producer.send({ topic: 'events', acks: -1, messages });
    }
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: 'g-events', ...TEST_CONSUMER_TIMINGS });
    await consumer.connect();
    let received: Received[];
    try {
      received = await consumeUntil(consumer, 'events', 1000);
    } finally {
      await consumer.disconnect();
    }

    expect(received).toHaveLength(1000);
    const byI = new Map<number, Received>();
    for (const r of received) {
      const body = JSON.parse(r.value) as { i: number; key: string };
      expect(byI.has(body.i)).toBe(false);
      byI.set(body.i, r);
      expect(r.key).toBe(body.key);
      expect(r.value).toBe(message(body.i).value);
    }
    expect([...byI.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));

    const partitionOfKey = new Map<string, number>();
    const byPartition = new Map<number, Received[]>();
    for (const r of received) {
      expect(partitionOfKey.get(r.key) ?? r.partition).toBe(r.partition);
      partitionOfKey.set(r.key, r.partition);
      byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r]);
    }
    expect(byPartition.size).toBe(4);
    for (const list of byPartition.values()) {
      // Delivered in offset order, offsets dense from 0, and in production order.
      expect(list.map((r) => r.offset)).toEqual(list.map((_, idx) => idx));
      const produced = list.map((r) => (JSON.parse(r.value) as { i: number }).i);
      expect(produced).toEqual([...produced].sort((a, b) => a - b));
    }
  });

  test('a consumer that fell behind gets, in one fetch, every producer batch that fits its byte limit (as from Kafka)', async () => {
    // 20 producer batches of 50 messages (~3 KB each) on one partition, all published before the
    // consumer starts. The stock mock answered a fetch with one producer batch, so a consumer
    // caught up 50 messages at a time; Kafka returns what fits in max.partition.fetch.bytes.
    const producer = idempotentProducer(kafka);
    await producer.connect();
    for (let b = 0; b < 20; b++) await producer.send({ topic: 'catchup', acks: -1, messages: Array.from({ length: 50 }, (_, j) => message(b * 50 + j)) });
    await producer.disconnect();
    const fetchSizes = async (groupId: string, maxBytesPerPartition: number) => {
      const consumer = kafka.consumer({ groupId, maxBytesPerPartition, ...TEST_CONSUMER_TIMINGS });
      const sizes: number[] = [];
      const offsets: number[] = [];
      await consumer.connect();
      try {
        await consumer.subscribe({ topic: 'catchup', fromBeginning: true });
        let done!: () => void;
        const all = new Promise<void>((r) => (done = r));
        await consumer.run({
          eachBatch: async ({ batch }) => {
            sizes.push(batch.messages.length);
            offsets.push(...batch.messages.map((m) => Number(m.offset)));
            if (offsets.length >= 1000) done();
          },
        });
        await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`got ${offsets.length}/1000`)), 20_000))]);
      } finally {
        await consumer.disconnect();
      }
      expect(offsets).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      return sizes;
    };
    // A 1 MiB limit holds all twenty batches: one fetch.
    expect(await fetchSizes('g-catchup-big', 1024 * 1024)).toEqual([1000]);
    // A 8 KiB limit holds two or so: more than one producer batch per fetch, never a partial one.
    const small = await fetchSizes('g-catchup-small', 8 * 1024);
    expect(small[0]).toBeGreaterThan(50);
    expect(small[0]).toBeLessThan(1000);
    for (const n of small) expect(n % 50).toBe(0);
  });

  test('a second consumer in the same group resumes after the committed offsets', async () => {
    const producer = idempotentProducer(kafka);
    await producer.connect();
    await producer.send({ topic: 'resume', messages: Array.from({ length: 100 }, (_, i) => message(i)) });

    const first = kafka.consumer({ groupId: 'g-resume', ...TEST_CONSUMER_TIMINGS });
    await first.connect();
    try {
      const got = await consumeUntil(first, 'resume', 100);
      expect(got).toHaveLength(100);
      const next = new Map<number, number>();
      for (const r of got) next.set(r.partition, Math.max(next.get(r.partition) ?? 0, r.offset + 1));
      await first.commitOffsets([...next].map(([partition, offset]) => ({ topic: 'resume', partition, offset: String(offset) })));
    } finally {
      await first.disconnect();
    }

    const admin = kafka.admin();
    await admin.connect();
    try {
      const committed = await admin.fetchOffsets({ groupId: 'g-resume', topics: ['resume'] });
      const total = committed[0]!.partitions.reduce((sum, p) => sum + Number(p.offset), 0);
      expect(total).toBe(100);
    } finally {
      await admin.disconnect();
    }

    await producer.send({ topic: 'resume', messages: Array.from({ length: 50 }, (_, i) => message(100 + i)) });
    await producer.disconnect();

    const second = kafka.consumer({ groupId: 'g-resume', ...TEST_CONSUMER_TIMINGS });
    await second.connect();
    let resumed: Received[];
    try {
      resumed = await consumeUntil(second, 'resume', 50);
      // Anything before the committed offsets would have arrived first; allow a moment for extras.
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await second.disconnect();
    }
    const seen = resumed.map((r) => (JSON.parse(r.value) as { i: number }).i).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
  });

  test('createTopic creates a topic with the requested partition count', async () => {
    await broker.createTopic('created-later', 3);
    await expect(broker.createTopic('created-later', 3)).rejects.toThrow(/TOPIC_ALREADY_EXISTS/);
    await expect(broker.createTopic('bad topic', 3)).rejects.toThrow(/invalid topic name/);

    const admin = kafka.admin();
    await admin.connect();
    try {
      // Auto-creation would have made 4 partitions: 3 proves the command created it.
      const md = await admin.fetchTopicMetadata({ topics: ['created-later'] });
      expect(md.topics[0]!.partitions).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }
  });

  test('injected produce errors are retried by kafkajs and the send still succeeds once', async () => {
    const producer = idempotentProducer(kafka);
    let produceRequests = 0;
    producer.on(producer.events.REQUEST, (e) => {
      if (e.payload.apiName === 'Produce') produceRequests++;
    });
    await producer.connect();
    await broker.command('push_errors 0 2 NOT_LEADER_FOR_PARTITION');
    await producer.send({ topic: 'retries', messages: Array.from({ length: 10 }, (_, i) => message(i)) });
    await producer.disconnect();
    expect(produceRequests).toBe(3); // two rejected, one accepted

    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets('retries');
      expect(offsets.map((o) => o.high)).toEqual(['10']); // no duplicates from the retries
    } finally {
      await admin.disconnect();
    }
  });

  test('keeps more than the stock 5 MiB per partition (retention patch)', async () => {
    await broker.createTopic('retention', 1);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const value = 'x'.repeat(1024);
    for (let batch = 0; batch < 8; batch++) {
      await producer.send({ topic: 'retention', messages: Array.from({ length: 1000 }, () => ({ value })) });
    }
    await producer.disconnect();

    const admin = kafka.admin();
    await admin.connect();
    try {
      // A stock mock would have dropped the oldest ~3 MiB: low would be > 0.
      expect(await admin.fetchTopicOffsets('retention')).toEqual([{ partition: 0, offset: '8000', high: '8000', low: '0' }]);
    } finally {
      await admin.disconnect();
    }
  });

  test('detached mode records its state and stops by pid', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'meterline-dev-broker-'));
    try {
      expect(readBrokerState(dir)).toBeNull();
      const state = await startDetachedDevBroker({ stateDir: dir, topics: [{ name: 'detached', partitions: 2 }] });
      expect(readBrokerState(dir)).toEqual(state);
      expect(state.bootstrapServers[0]).toMatch(/^127\.0\.0\.1:\d+$/);
      await expect(stopDetachedDevBroker(dir)).resolves.toBe(true);
      expect(readBrokerState(dir)).toBeNull();

      // A state file naming a process that is not a dev broker reads as no broker.
      writeBrokerState(dir, { bootstrapServers: ['127.0.0.1:1'], pid: process.pid, startedAt: new Date().toISOString() });
      expect(readBrokerState(dir)).toBeNull();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
