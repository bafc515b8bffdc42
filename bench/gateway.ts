import http from 'node:http';
import { createEncoderFromConfig } from '../src/adapters/avro/from-config';
import { createKafka } from '../src/adapters/kafka/kafka';
import { createPublisher } from '../src/adapters/kafka/publisher';
import { loadConfig } from '../src/config/config';
import { parseMeterCatalog } from '../src/domain/meters';
import { generateApiKey } from '../src/gateway/api-key';
import { openApiDocument } from '../src/gateway/from-config';
import { startKeyCache } from '../src/gateway/key-cache';
import { createPublishQueue } from '../src/gateway/publish-queue';
import { createKeyRateLimiter } from '../src/gateway/rate-limit';
import { startGateway } from '../src/gateway/server';
import { silentLogger } from '../src/runtime/logger';
import { createGatewayMetrics } from '../src/runtime/metrics';
import { percentile } from './workload';

export interface GatewayBenchParams {
  readonly brokers: string[];
  /** A topic of its own (e.g. usage.events.gateway-bench), so the pipeline's accounting is untouched. */
  readonly topic: string;
  /** Requests of one event each… */
  readonly singleRequests: number;
  /** …and requests of `batchSize` events each (a JSON array). */
  readonly batchRequests: number;
  readonly batchSize?: number;
  /** Requests in flight at once (keep-alive connections). */
  readonly concurrency?: number;
}

export interface GatewayBenchResult {
  readonly gatewaySingleEventsPerSecond: number;
  readonly gatewaySingleP50Ms: number | null;
  readonly gatewaySingleP99Ms: number | null;
  readonly gatewayBatchedEventsPerSecond: number;
  readonly gatewayBatchP50Ms: number | null;
  readonly gatewayBatchP99Ms: number | null;
  readonly gatewayBatchSize: number;
  readonly gatewayConcurrency: number;
  /** Events acknowledged by Kafka (acks from all in-sync replicas) over both phases. */
  readonly gatewayEventsAccepted: number;
}

/**
 * Events per second over HTTP on loopback, through the gateway's real path (auth, body
 * parsing, validation, the publish queue, Kafka with acks = all) and answered 202. The gateway
 * and its HTTP client share this process (and its event loop): the figure is a floor.
 * API keys come from memory, not ClickHouse (the key cache is off the request path anyway).
 */
export async function measureGateway(p: GatewayBenchParams): Promise<GatewayBenchResult> {
  const batchSize = p.batchSize ?? 500;
  const concurrency = p.concurrency ?? 32;
  const config = loadConfig({ KAFKA_BROKERS: p.brokers.join(','), KAFKA_TOPIC: p.topic, LOG_LEVEL: 'silent' });
  const meters = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum' }] });
  if (!meters.ok) throw new Error(meters.problems.join('; '));
  const kafka = createKafka(p.brokers, { clientId: 'meterline-bench-gateway' });
  const publisher = await createPublisher({ kafka, topic: p.topic, encoder: createEncoderFromConfig(config) });
  const queue = createPublishQueue((events) => publisher.publish(events), { maxEventsPerSend: 10_000 });
  const key = generateApiKey();
  const keys = await startKeyCache({
    load: async () => [{ id: key.id, tenant: 'bench', name: 'bench', keySha256: key.hash, createdAt: new Date().toISOString(), revokedAt: null }],
    refreshMs: 1_000,
    maxStaleMs: 60_000,
    clock: Date.now,
    logger: silentLogger(),
  });
  const gateway = await startGateway({
    host: '127.0.0.1',
    port: 0,
    keys,
    rateLimiter: createKeyRateLimiter({ perSecond: 1e9, burst: 1e9 }),
    timeouts: { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000 },
    openapi: openApiDocument(),
    publish: queue.publish,
    clock: Date.now,
    maxFutureSkewMs: config.ingest.maxFutureSkewMs,
    maxBodyBytes: 64 * 1024 * 1024,
    maxEvents: Math.max(batchSize, 1),
    queryUsage: async () => [],
    meters: () => meters.catalog,
    billingAnchorDay: 1,
    metrics: createGatewayMetrics({ defaultMetrics: false }),
    logger: silentLogger(),
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL('/v1/events', gateway.url);
  let seq = 0;
  const body = (n: number) => {
    const now = Date.now();
    const events = Array.from({ length: n }, () => `{"id":"gw-${process.pid}-${(seq += 1)}","customer":"c${seq % 100}","meter":"tokens","value":"1.5","timestamp":${now}}`);
    return n === 1 ? events[0]! : `[${events.join(',')}]`;
  };
  const post = (payload: string) =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(url, { method: 'POST', agent, headers: { authorization: `Bearer ${key.key}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 202 ? resolve() : reject(new Error(`gateway answered ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(payload);
    });
  const phase = async (requests: number, eventsPerRequest: number) => {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: Math.min(concurrency, requests) }, async () => {
        while (next < requests) {
          next += 1;
          const t0 = performance.now();
          await post(body(eventsPerRequest));
          latencies.push(performance.now() - t0);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const ms = (v: number | null) => (v === null ? null : Math.round(v * 10) / 10);
    return { eventsPerSecond: Math.round((requests * eventsPerRequest) / seconds), p50: ms(percentile(latencies, 0.5)), p99: ms(percentile(latencies, 0.99)) };
  };
  try {
    const single = await phase(p.singleRequests, 1);
    const batched = await phase(p.batchRequests, batchSize);
    return {
      gatewaySingleEventsPerSecond: single.eventsPerSecond,
      gatewaySingleP50Ms: single.p50,
      gatewaySingleP99Ms: single.p99,
      gatewayBatchedEventsPerSecond: batched.eventsPerSecond,
      gatewayBatchP50Ms: batched.p50,
      gatewayBatchP99Ms: batched.p99,
      gatewayBatchSize: batchSize,
      gatewayConcurrency: concurrency,
      gatewayEventsAccepted: p.singleRequests + p.batchRequests * batchSize,
    };
  } finally {
    agent.destroy();
    await gateway.close();
    keys.stop();
    await queue.idle();
    await publisher.close();
  }
}
