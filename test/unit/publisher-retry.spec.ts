/**
 * `meterline publish` (adapters/kafka/publisher.ts) across a broker outage longer than kafkajs'
 * own retries: a send that fails with a retriable error is sent again; any other error, or one
 * that outlasts PUBLISH_ATTEMPTS, reaches the caller.
 */
import type { Kafka } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createPublisher, PUBLISH_ATTEMPTS } from '../../src/adapters/kafka/publisher';
import type { UsageEvent } from '../../src/domain/usage-event';

const event: UsageEvent = { id: 'e1', tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: 1_700_000_000_000, properties: {}, source: null };
const retriable = () => Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), { retriable: true });

function fakeKafka(failures: (() => Error)[]) {
  const sent: unknown[] = [];
  const kafka = {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      send: async (record: unknown) => {
        const failure = failures.shift();
        if (failure) throw failure();
        sent.push(record);
        return [];
      },
    }),
  } as unknown as Kafka;
  return { kafka, sent };
}

describe('publisher: a send that fails after kafkajs gave up', () => {
  const waits: number[] = [];
  const sleep = async (ms: number) => void waits.push(ms);
  beforeEach(() => (waits.length = 0));

  it('is sent again while the error is retriable (a broker restart that outlasts kafkajs retries)', async () => {
    const { kafka, sent } = fakeKafka([retriable, retriable, retriable]);
    const publisher = await createPublisher({ kafka, topic: 'usage', encoder: createSingleObjectEncoder(), sleep });
    await publisher.publish([event]);
    expect(sent).toHaveLength(1);
    expect(waits).toHaveLength(3);
  });

  it('reaches the caller when it is not retriable, at once', async () => {
    const { kafka, sent } = fakeKafka([() => new Error('TOPIC_AUTHORIZATION_FAILED')]);
    const publisher = await createPublisher({ kafka, topic: 'usage', encoder: createSingleObjectEncoder(), sleep });
    await expect(publisher.publish([event])).rejects.toThrow('TOPIC_AUTHORIZATION_FAILED');
    expect(sent).toHaveLength(0);
    expect(waits).toHaveLength(0);
  });

  it(`reaches the caller after ${PUBLISH_ATTEMPTS} sends that all failed`, async () => {
    const { kafka, sent } = fakeKafka(Array.from({ length: PUBLISH_ATTEMPTS }, () => retriable));
    const publisher = await createPublisher({ kafka, topic: 'usage', encoder: createSingleObjectEncoder(), sleep });
    await expect(publisher.publish([event])).rejects.toThrow('ECONNREFUSED');
    expect(sent).toHaveLength(0);
    expect(waits).toHaveLength(PUBLISH_ATTEMPTS - 1);
  });
});
