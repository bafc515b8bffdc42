import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { createAlertTopic } from '../adapters/alerts/alert-topic';
import { createAlertWebhook } from '../adapters/alerts/alert-webhook';
import { createAlertStore } from '../adapters/clickhouse/alert-store';
import { periodTotalsFrom } from '../adapters/clickhouse/period-totals';
import { createStreamStore, type ChangedStream } from '../adapters/clickhouse/stream-store';
import type { Config } from '../config/config';
import type { AllotmentCatalog } from '../domain/allotments';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { createAlertDeliveries } from './alert-deliveries';
import { createAlerter, type AlertFaultPoint } from './alerter';
import { startAlerterLoop } from './alerter-loop';
import type { ChangeFeed } from './change-feed';
import type { PushLeadership } from './push-loop';

/** How often the alerter looks for changed streams (the alert latency's main part). */
export const ALERT_CHECK_INTERVAL_MS = 500;

/**
 * The alerter of `meterline run` (nothing without allotments: ALLOTMENTS_FILE, loaded and checked
 * against the meters by the caller at start-up), alerting as the process holding `leadership`.
 */
export async function startAlertsFromConfig(deps: {
  config: Config;
  kafka: Kafka;
  ch: ClickHouseClient;
  allotments: AllotmentCatalog | null;
  changedStreams: (since: number, exceptWriter?: string) => Promise<ChangedStream[]>;
  /** This process's own ingest's changes, in process (see AlerterDeps.ownChanges): subscribed to only when alerts are on. */
  changes?: ChangeFeed;
  leadership: PushLeadership;
  metrics: Metrics;
  logger: Logger;
}): Promise<{ stop(): Promise<void> } | null> {
  const { config, logger } = deps;
  const { allotments } = deps;
  if (!allotments) return null;
  const database = config.clickhouse.database;
  const alerts = createAlertStore(deps.ch, database);
  const topic = await createAlertTopic(deps.kafka, config.alerts.topic);
  const { webhookUrl, webhookSecret } = config.alerts;
  const deliveries =
    webhookUrl && webhookSecret
      ? createAlertDeliveries({ webhook: createAlertWebhook({ url: webhookUrl, secret: webhookSecret, clock: Date.now }), alerts, clock: Date.now, random: Math.random, logger, metrics: deps.metrics })
      : null;
  const killAt = config.chaos.alertKillAt;
  const faultPoint = killAt
    ? (point: AlertFaultPoint) => {
        if (point !== killAt) return;
        logger.warn({ point }, 'CHAOS: SIGKILL inside the alert protocol (CHAOS_ALERT_KILL_AT; testing only)');
        process.kill(process.pid, 'SIGKILL');
      }
    : undefined;
  const alerter = createAlerter({
    allotments,
    changedStreams: deps.changedStreams,
    ...(deps.changes ? { ownChanges: deps.changes.subscribe({ meters: allotments.meters }) } : {}),
    // A stream store of its own (not the pusher's): what each keeps follows its own reads.
    periodTotals: periodTotalsFrom(createStreamStore(deps.ch, database), config.stripe.billingAnchorDay),
    alerts,
    topic,
    deliveries,
    billingAnchorDay: config.stripe.billingAnchorDay,
    clock: Date.now,
    logger,
    metrics: deps.metrics,
    faultPoint,
  });
  const loop = startAlerterLoop(alerter, logger, ALERT_CHECK_INTERVAL_MS, deps.leadership);
  logger.info({ allotments: allotments.allotments.length, topic: config.alerts.topic, webhook: Boolean(deliveries) }, 'usage alerts on');
  return {
    async stop() {
      await loop.stop();
      await deliveries?.stop();
      await topic.close();
    },
  };
}
