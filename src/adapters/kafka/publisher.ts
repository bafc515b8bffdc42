import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { partitionKey, type UsageEvent } from '../../domain/usage-event';
import type { EventEncoder } from '../avro/codec';
import { isTransientKafkaError } from './kafka';
import { backoffDelay, retry } from '../../runtime/retry';

/** Marks records published by `meterline backfill` (value "1"): counted even in final windows. */
export const BACKFILL_HEADER = 'meterline-backfill';

export interface Publisher {
  /** Resolves only once every event is acknowledged by all in-sync replicas (acks = -1). */
  publish(events: readonly UsageEvent[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Sends of a batch, the first included, while they fail with an error kafkajs marks retriable
 * (each after kafkajs' own retries, ~25 s with createKafka's settings): a broker restart that
 * outlasts kafkajs' retries does not end a `meterline publish` that is halfway through its input.
 */
export const PUBLISH_ATTEMPTS = 6;

/**
 * Publishes usage events keyed by (tenant, id), so every copy of one event lands in the same
 * partition and ingest can dedupe it there. The producer is idempotent: kafkajs' own retries
 * never write a message twice. A send that failed after them is sent again (PUBLISH_ATTEMPTS):
 * if the failed one was written after all, the copies carry the same keys and ingest counts the
 * event once.
 */
export async function createPublisher(opts: {
  kafka: Kafka;
  topic: string;
  encoder: EventEncoder;
  headers?: Readonly<Record<string, string>>;
  /** Waits between sends of a batch (tests). */
  sleep?: (ms: number) => Promise<void>;
}): Promise<Publisher> {
  // The Java client's murmur2 partitioner: producers in other languages keying by the same
  // (tenant, id) string send every copy of an event to the same partition as we do.
  const producer: Producer = opts.kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  return {
    async publish(events) {
      if (events.length === 0) return;
      const messages = await Promise.all(
        events.map(async (e) => ({ key: partitionKey(e), value: await opts.encoder.encode(e), headers: opts.headers })),
      );
      await retry(() => producer.send({ topic: opts.topic, messages, acks: -1, compression: CompressionTypes.None }), {
        attempts: PUBLISH_ATTEMPTS,
        isRetriable: isTransientKafkaError,
        delay: (attempt) => backoffDelay(attempt, { baseMs: 1_000, maxMs: 10_000 }),
        sleep: opts.sleep,
      });
    },
    close: () => producer.disconnect(),
  };
}
