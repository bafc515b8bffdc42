import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { partitionKey, type UsageEvent } from '../../domain/usage-event';
import type { EventEncoder } from '../avro/codec';

/** Marks records published by `meterline backfill` (value "1"): counted even in final windows. */
export const BACKFILL_HEADER = 'meterline-backfill';

export interface Publisher {
  /** Resolves only once every event is acknowledged by all in-sync replicas (acks = -1). */
  publish(events: readonly UsageEvent[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Publishes usage events keyed by (tenant, id), so every copy of one event lands in the same
 * partition and ingest can dedupe it there. The producer is idempotent: kafkajs' own retries
 * never write a message twice.
 */
export async function createPublisher(opts: { kafka: Kafka; topic: string; encoder: EventEncoder; headers?: Readonly<Record<string, string>> }): Promise<Publisher> {
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
      await producer.send({ topic: opts.topic, messages, acks: -1, compression: CompressionTypes.None });
    },
    close: () => producer.disconnect(),
  };
}
