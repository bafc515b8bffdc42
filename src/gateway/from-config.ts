import fs from 'node:fs';
import path from 'node:path';
import { createEncoderFromConfig } from '../adapters/avro/from-config';
import { createApiKeyStore } from '../adapters/clickhouse/api-key-store';
import type { ClickHouseClient } from '../adapters/clickhouse/client';
import { queryUsage } from '../adapters/clickhouse/usage-query';
import { createKafka } from '../adapters/kafka/kafka';
import { createPublisher } from '../adapters/kafka/publisher';
import { loadMeterCatalog } from '../adapters/meters-file';
import type { Config } from '../config/config';
import type { Logger } from '../runtime/logger';
import { createGatewayMetrics, type GatewayMetrics } from '../runtime/metrics';
import { projectRoot } from '../runtime/project-root';
import { startKeyCache } from './key-cache';
import { createPublishQueue } from './publish-queue';
import { createKeyRateLimiter } from './rate-limit';
import { startGateway, type Gateway } from './server';

/** Most events one send to Kafka carries when the queue groups concurrent requests. */
const MAX_EVENTS_PER_SEND = 10_000;
/** Without a successful reload of the keys for this long, every request is refused (503). */
const MAX_KEY_STALENESS_MS = 30_000;

export function openApiDocument(): unknown {
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), 'openapi', 'meterline.json'), 'utf8'));
}

/**
 * One gateway, assembled from the configuration: `meterline gateway`, the benchmark and the
 * tests all start it this way. `clickhouse` is opened (read-only) by the caller; Kafka is reached
 * at `brokers`. `close` stops accepting, then closes the producer.
 */
export async function startGatewayFromConfig(opts: {
  config: Config;
  logger: Logger;
  clickhouse: ClickHouseClient;
  brokers: string[];
  metrics?: GatewayMetrics;
}): Promise<Gateway> {
  const { config, logger } = opts;
  const meters = loadMeterCatalog(config.ingest.metersFile);
  const kafka = createKafka(opts.brokers, { clientId: `${config.kafka.clientId}-gateway`, logger });
  const publisher = await createPublisher({ kafka, topic: config.kafka.topic, encoder: createEncoderFromConfig(config) });
  const queue = createPublishQueue((events) => publisher.publish(events), { maxEventsPerSend: MAX_EVENTS_PER_SEND });
  const keyStore = createApiKeyStore(opts.clickhouse, config.clickhouse.database);
  let keys;
  try {
    keys = await startKeyCache({ load: () => keyStore.all(), refreshMs: config.gateway.keyRefreshMs, maxStaleMs: MAX_KEY_STALENESS_MS, clock: Date.now, logger });
  } catch (err) {
    await publisher.close();
    throw err;
  }
  const g = config.gateway;
  const gateway = await startGateway({
    host: g.host,
    port: g.port,
    keys,
    rateLimiter: createKeyRateLimiter({ perSecond: g.rateLimitPerSecond, burst: g.rateLimitBurst }),
    timeouts: { headersTimeoutMs: g.headersTimeoutMs, requestTimeoutMs: g.requestTimeoutMs },
    openapi: openApiDocument(),
    publish: queue.publish,
    clock: Date.now,
    maxFutureSkewMs: config.ingest.maxFutureSkewMs,
    maxBodyBytes: g.maxBodyBytes,
    maxEvents: g.maxEventsPerRequest,
    queryUsage: (q) => queryUsage(opts.clickhouse, config.clickhouse.database, q),
    meters: () => meters,
    billingAnchorDay: config.stripe.billingAnchorDay,
    metrics: opts.metrics ?? createGatewayMetrics(),
    logger,
  });
  return {
    url: gateway.url,
    async close() {
      await gateway.close();
      keys.stop();
      await queue.idle();
      await publisher.close();
    },
  };
}
