import type { IHeaders, Kafka, Producer } from 'kafkajs';
import type { DeadLetterSink } from '../../ports/dead-letters';

export type { DeadLetterSink };

export const DLQ_HEADERS = {
  reasonCode: 'meterline-reason-code',
  reason: 'meterline-reason',
  topic: 'meterline-source-topic',
  partition: 'meterline-source-partition',
  offset: 'meterline-source-offset',
} as const;

/** Dead letters keep the original key and bytes untouched; the reason travels in headers. */
export async function createDeadLetterSink(kafka: Kafka, topic: string): Promise<DeadLetterSink> {
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  return {
    async send(rejections) {
      if (rejections.length === 0) return;
      await producer.send({
        topic,
        acks: -1,
        messages: rejections.map((r) => {
          const headers: IHeaders = {
            [DLQ_HEADERS.reasonCode]: r.code,
            [DLQ_HEADERS.reason]: r.reason,
            [DLQ_HEADERS.topic]: r.ref.topic,
            [DLQ_HEADERS.partition]: String(r.ref.partition),
            [DLQ_HEADERS.offset]: r.ref.offset,
          };
          return { key: r.key, value: r.raw, headers };
        }),
      });
    },
    close: () => producer.disconnect(),
  };
}
