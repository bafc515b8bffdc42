import { Kafka, logLevel } from 'kafkajs';
import { createDecoder } from '../src/adapters/avro/codec';
import { WORKER_FETCH } from '../src/adapters/kafka/kafka-event-source';

export interface BaselineParams {
  readonly brokers: string[];
  readonly topic: string;
  readonly events: number;
}

export interface BaselineResult {
  readonly events: number;
  readonly decoded: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly peakRssMiB: number;
}

/**
 * The ceiling the pipeline is compared with: a bare kafkajs consumer (the ingest worker's fetch
 * settings, one partition at a time) that reads the topic from the beginning and Avro-decodes every
 * message with the project's decoder, and does nothing else.
 */
export async function runBaseline(p: BaselineParams): Promise<BaselineResult> {
  const kafka = new Kafka({ clientId: 'bench-baseline', brokers: p.brokers, logLevel: logLevel.NOTHING });
  const decoder = createDecoder();
  const consumer = kafka.consumer({ groupId: `bench-baseline-${process.pid}`, ...WORKER_FETCH });
  let read = 0;
  let decoded = 0;
  const started = performance.now();
  await consumer.connect();
  await consumer.subscribe({ topic: p.topic, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        const out = await decoder.decodeMany(batch.messages.map((m) => m.value));
        for (const d of out) if (d.ok) decoded += 1;
        read += batch.messages.length;
        if (read >= p.events) resolve();
      },
    });
  });
  await done;
  const seconds = (performance.now() - started) / 1000;
  await consumer.disconnect();
  return { events: read, decoded, seconds, eventsPerSecond: read / seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024 };
}
