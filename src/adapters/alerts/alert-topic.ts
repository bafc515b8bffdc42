import { randomUUID } from 'node:crypto';
import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { encodeAlert, type UsageAlert } from './alert-codec';

export interface AlertTopic {
  /** Resolves once every alert is acknowledged by all in-sync replicas (acks = -1), keyed by alert id. */
  publish(alerts: readonly UsageAlert[]): Promise<void>;
  /**
   * Which of `ids` are on the topic in records from `since` (ms, record timestamp) to the end as
   * it is when the call begins. Reads only that stretch of each partition.
   */
  findPublished(ids: ReadonlySet<string>, since: number, timeoutMs?: number): Promise<Set<string>>;
  close(): Promise<void>;
}

export async function createAlertTopic(kafka: Kafka, topic: string): Promise<AlertTopic> {
  // Idempotent, one request in flight: kafkajs' own retries never write an alert twice.
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return {
    async publish(alerts) {
      if (alerts.length === 0) return;
      await producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: alerts.map((a) => ({ key: a.alertId, value: encodeAlert(a) })) });
    },
    findPublished: (ids, since, timeoutMs = 60_000) => scanForKeys(kafka, topic, ids, since, timeoutMs),
    close: () => producer.disconnect(),
  };
}

interface PartitionScan {
  /** First offset to read; `suspect` is the broker's offset-by-timestamp answer, checked on its predecessor. */
  start: number;
  suspect: number | null;
  low: number;
  /** Exclusive end: the high watermark when the scan began. */
  end: number;
  done: boolean;
}

/**
 * Reads each partition from the first record at or after `since` (kafkajs
 * admin.fetchTopicOffsetsByTimestamp) up to its current end, collecting the keys among `ids`.
 * The timestamp lookup is checked, not trusted: reading from one record before the offset it
 * returns, that record must be older than `since`; if it is not (the dev broker answers every
 * lookup with the end offset), the partition is read from its beginning instead.
 */
async function scanForKeys(kafka: Kafka, topic: string, ids: ReadonlySet<string>, since: number, timeoutMs: number): Promise<Set<string>> {
  const found = new Set<string>();
  if (ids.size === 0) return found;
  const admin = kafka.admin();
  await admin.connect();
  let scans: Map<number, PartitionScan>;
  try {
    const [bounds, byTime] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchTopicOffsetsByTimestamp(topic, Math.max(0, since))]);
    scans = new Map(
      bounds.map((b) => {
        const low = Number(b.low);
        const end = Number(b.high);
        const t = byTime.find((x) => x.partition === b.partition);
        const at = t && Number(t.offset) >= 0 ? Math.min(Math.max(Number(t.offset), low), end) : low;
        const suspect = at > low ? at : null;
        return [b.partition, { start: suspect === null ? low : at - 1, suspect, low, end, done: low >= end }];
      }),
    );
  } finally {
    await admin.disconnect();
  }
  if ([...scans.values()].every((s) => s.done)) return found;

  // A throw-away group that never commits: it only reads.
  const consumer = kafka.consumer({ groupId: `meterline-alert-scan-${randomUUID()}`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const check = () => {
      if ([...scans.values()].every((s) => s.done)) finish();
    };
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const s = scans.get(batch.partition);
        if (!s || s.done) return;
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          if (offset < s.start) continue;
          if (s.suspect !== null && offset === s.suspect - 1) {
            const lookupWrong = Number(m.timestamp) >= since;
            s.suspect = null;
            if (lookupWrong && s.start > s.low) {
              s.start = s.low;
              consumer.seek({ topic, partition: batch.partition, offset: String(s.low) });
              return;
            }
          }
          if (m.key && ids.has(m.key.toString())) found.add(m.key.toString());
          if (offset >= s.end - 1) {
            s.done = true;
            break;
          }
        }
        check();
      },
    });
    // Records before a partition's start that a first fetch may bring are skipped in eachBatch.
    for (const [partition, s] of scans) if (!s.done) consumer.seek({ topic, partition, offset: String(s.start) });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`alert topic scan did not reach the end of ${topic} within ${timeoutMs} ms`)), timeoutMs)));
    try {
      await Promise.race([finished, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return found;
  } finally {
    await consumer.disconnect();
  }
}
