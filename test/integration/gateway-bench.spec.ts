import { measureGateway } from '../../bench/gateway';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, type TestBroker } from '../helpers/kafka';

const TOPIC = 'usage.events.gateway-bench';

/** The gateway throughput measurement at a tiny size: its figures are there and its events reached Kafka. No timing is asserted. */
describe('bench: gateway throughput over HTTP (tiny run)', () => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await startTestBroker([{ name: TOPIC, partitions: 2 }]);
  }, BROKER_BUILD_TIMEOUT_MS);
  afterAll(async () => broker?.stop());

  it('reports events/s for single-event and batched requests, every event acknowledged on the topic', async () => {
    const r = await measureGateway({ brokers: broker.bootstrapServers, topic: TOPIC, singleRequests: 200, batchRequests: 4, batchSize: 500, concurrency: 8 });
    expect(r).toMatchObject({ gatewayBatchSize: 500, gatewayConcurrency: 8, gatewayEventsAccepted: 2200 });
    expect(r.gatewaySingleEventsPerSecond).toBeGreaterThan(0);
    expect(r.gatewayBatchedEventsPerSecond).toBeGreaterThan(0);
    expect(r.gatewaySingleP99Ms!).toBeGreaterThanOrEqual(r.gatewaySingleP50Ms!);
    const admin = kafkaFor(broker).admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(TOPIC);
    await admin.disconnect();
    expect(offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0)).toBe(2200);
  }, 120_000);
});
