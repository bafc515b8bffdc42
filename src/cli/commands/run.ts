import type { Command } from 'commander';
import { createEncoderFromConfig } from '../../adapters/avro/from-config';
import { createWorkerPusher, pushPace, startWorkerIngest, withChangeFeed } from '../../app/worker';
import { PUSH_PACE } from '../../domain/push-pace';
import { startDevClickHouse } from '../../dev/dev-clickhouse/server';
import { clearDevClickHouseState, writeDevClickHouseState } from '../../dev/dev-clickhouse/state';
import { createPushStore } from '../../adapters/clickhouse/push-store';
import { ledgerSize } from '../../adapters/clickhouse/ledger-size';
import { pushStatusCounts } from '../../adapters/clickhouse/ledger-stats';
import { createBillingSink, stripeClientFromConfig } from '../../adapters/stripe/from-config';
import { errorReportRoute } from '../../pipeline/error-reports';
import { listStripeMeters } from '../../adapters/stripe/meters';
import { startMeterGate } from '../../pipeline/stripe-meter-gate';
import { createReconcileRunner } from '../../pipeline/reconcile-runner';
import { migrate } from '../../adapters/clickhouse/migrations';
import { createDeadLetterSink } from '../../adapters/kafka/dlq';
import { createGroupOffsetReader } from '../../adapters/kafka/group-lag';
import { createKafka, requireReachableBrokers, resolveBrokers } from '../../adapters/kafka/kafka';
import { createPublisher } from '../../adapters/kafka/publisher';
import { loadMeterCatalog } from '../../adapters/meters-file';
import { startDemoProducer } from '../../pipeline/demo-producer';
import { startHealthMonitor } from '../../pipeline/health-monitor';
import { newWorkerIdentity } from '../../runtime/worker-identity';
import { startPushLoop } from '../../pipeline/push-loop';
import { startAlertsFromConfig } from '../../pipeline/alerts-from-config';
import { createStreamStore } from '../../adapters/clickhouse/stream-store';
import { loadAllotments } from '../../adapters/allotments-file';
import { createRateLimiter } from '../../runtime/rate-limiter';
import { healthRoute, metricsRoute, startHttpServer, type Route } from '../../runtime/http-server';
import { createMetrics } from '../../runtime/metrics';
import { MeterlineError, errorMessage } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext, waitForShutdownSignal } from '../context';
import { configWarnings, describeStripeRateLimit } from '../../config/warnings';
import { withExamples } from '../help';
import { startEmbeddedBroker } from './dev-broker';

const DAY_MS = 86_400_000;
/** How long a worker that became the pusher waits before pushing: its predecessor's last writes land first. */
const PUSHER_GRACE_MS = 5_000;

export function registerRun(program: Command): void {
  const command = program
    .command('run')
    .description('run the worker: consume usage events, dedupe, enrich and store them (embedded defaults when nothing is configured)')
    .option('--no-demo', 'with an embedded dev broker, do not publish demo events')
    .action(async (opts: { demo: boolean }) => {
      // Listening for SIGTERM/SIGINT from the first moment: a stop requested during start-up (a
      // supervisor's restart, a deploy) lets start-up finish and then shuts down cleanly, exit 0,
      // instead of the process dying by the signal halfway through connecting.
      const stopRequested = waitForShutdownSignal();
      const { config, logger } = createContext();
      const stack: (() => Promise<void>)[] = [];
      const shutdown = async () => {
        for (const close of stack.reverse()) await close().catch((err) => logger.error({ err }, 'error during shutdown'));
      };
      try {
        const meters = loadMeterCatalog(config.ingest.metersFile);
        const allotments = config.alerts.allotmentsFile ? loadAllotments(config.alerts.allotmentsFile, meters) : null;
        const ch = await openClickHouse(config, { logger });
        stack.push(() => ch.close());
        await migrate(ch, config.clickhouse.database);
        logger.info({ clickhouse: config.clickhouse.url ? 'server' : `embedded (${config.clickhouse.embeddedPath})` }, 'ClickHouse ready');
        if (!config.clickhouse.url) {
          // The embedded engine is this process's alone: other local commands (stats, query, …)
          // reach it through this HTTP interface, found via the data directory's state file.
          const served = await startDevClickHouse({
            dataPath: config.clickhouse.embeddedPath,
            host: config.http.host,
            port: 0,
            username: config.clickhouse.username,
            password: config.clickhouse.password ?? '',
          });
          writeDevClickHouseState(config.dataDir, { url: served.url, pid: process.pid, dataPath: config.clickhouse.embeddedPath, startedAt: new Date().toISOString() });
          stack.push(async () => {
            clearDevClickHouseState(config.dataDir);
            await served.close();
          });
          logger.info({ url: served.url }, 'embedded ClickHouse shared with local commands over HTTP');
        }
        if (config.chaos.clickhouseFaults) logger.warn({ faults: config.chaos.clickhouseFaults }, 'CHAOS: injecting ClickHouse faults (CHAOS_CLICKHOUSE_FAULTS; testing only)');
        if (!config.stripe.apiKey) logger.info('no STRIPE_API_KEY: Stripe shadow mode (the push ledger is written, nothing is sent)');
        else logger.info({ rateLimits: config.stripe.rateLimits }, describeStripeRateLimit(config));
        for (const w of configWarnings(config)) logger.warn(w);

        let brokers = resolveBrokers(config) ? await requireReachableBrokers(config) : undefined;
        let embedded = false;
        if (!brokers) {
          const broker = await startEmbeddedBroker(config, logger);
          stack.push(() => broker.stop());
          brokers = broker.bootstrapServers;
          embedded = true;
        }
        const kafka = createKafka(brokers, { clientId: config.kafka.clientId, logger });
        const metrics = createMetrics();
        const ctx = withChangeFeed({ config, ch, kafka, meters: () => meters, metrics, logger, ingestedBy: newWorkerIdentity() });
        const dedupeWindowMs = config.ingest.dedupeWindowDays * DAY_MS;
        // Health is watched from before the consumer starts: not ready until it runs and owns partitions.
        const health = startHealthMonitor({
          offsets: createGroupOffsetReader(kafka, config.kafka.topic, config.kafka.groupId),
          pingClickHouse: async () => {
            const r = await ch.ping();
            if (!r.success) throw r.error;
          },
          dedupeStoreSize: () => ledgerSize(ch, config.clickhouse.database, dedupeWindowMs, Date.now()),
          pushStatusCounts: () => pushStatusCounts(ch, config.clickhouse.database),
          metrics,
          clock: Date.now,
          logger,
          stallMs: config.http.readyStallMs,
        });
        stack.push(() => health.stop());
        const routes: Record<string, Route> = {
          '/metrics': metricsRoute(metrics.registry),
          '/health/live': healthRoute(() => health.liveness()),
          '/health/ready': healthRoute(() => health.readiness()),
        };
        // Reads (meter lists, event summaries) with their own share of the rate limit, retried when rate-limited.
        const reader = stripeClientFromConfig(config, { maxNetworkRetries: 3 });
        const readLimiter = createRateLimiter(config.stripe.rateLimits.reconcilePerSecond);
        const reconciler = reader
          ? createReconcileRunner({ ch, database: config.clickhouse.database, meters, stripe: reader, pacing: { rateLimit: () => readLimiter.take() }, metrics, logger })
          : null;
        const webhookClient = stripeClientFromConfig(config);
        if (webhookClient && config.stripe.webhookSecret) {
          routes['/webhooks/stripe'] = errorReportRoute({
            stripe: webhookClient,
            webhookSecret: config.stripe.webhookSecret,
            pushes: createPushStore(ch, config.clickhouse.database),
            clock: Date.now,
            logger,
            metrics,
            onUnexplained: (u) => void reconciler?.afterErrorReport(u).catch((err) => logger.warn({ err }, 'reconcile after an error report failed')),
            // The event fetch is a read too: it shares the readers' limit, not the pusher's.
            pacing: { rateLimit: () => readLimiter.take() },
          });
        }
        const http = await startHttpServer({ host: config.http.host, port: config.http.metricsPort, routes, logger });
        stack.push(() => http.close());
        logger.info({ url: `${http.url}/metrics`, health: [`${http.url}/health/live`, `${http.url}/health/ready`] }, 'metrics endpoint listening');

        const deadLetters = await createDeadLetterSink(kafka, config.kafka.dlqTopic);
        stack.push(() => deadLetters.close());
        const worker = await startWorkerIngest(ctx, { deadLetters });
        stack.push(() => worker.stop());
        health.attach(worker);

        // Stripe's meters, checked against meters.yaml: a mismatched meter is held (not pushed), and
        // events carry each Stripe meter's own payload keys.
        const gate = reader ? await startMeterGate({ catalog: meters, listMeters: () => listStripeMeters(reader, { rateLimit: () => readLimiter.take() }), logger, metrics }) : null;
        if (gate) stack.push(async () => gate.stop());
        const sink = createBillingSink(config, metrics, gate?.payloadKeys);
        stack.push(() => sink.close());
        // One pusher per consumer group: the worker that owns partition 0 (see PushLeadership).
        const isPusher = () => worker.owns(0);
        const pusher = createWorkerPusher(ctx, { sink, meters: () => gate?.billable() ?? meters, active: isPusher });
        const pushLoop = await startPushLoop(pusher, logger, PUSH_PACE.INTERVAL_MS, { isLeader: isPusher, graceMs: PUSHER_GRACE_MS }, pushPace(worker));
        stack.push(() => pushLoop.stop());

        // Usage alerts (ALLOTMENTS_FILE): on the pusher's leadership rule, one process at a time.
        const streams = createStreamStore(ch, config.clickhouse.database);
        const alerts = await startAlertsFromConfig({ config, kafka, ch, allotments, changedStreams: (since, exceptWriter) => streams.changedStreams(since, exceptWriter), changes: ctx.changes, leadership: { isLeader: isPusher, graceMs: PUSHER_GRACE_MS }, metrics, logger });
        if (alerts) stack.push(() => alerts.stop());

        // Drift against Stripe, exported as meterline_reconcile_drift (last 48 hours, every 5 minutes).
        if (reconciler) {
          const timer = setInterval(() => void reconciler.periodic().catch((err) => logger.warn({ err }, 'periodic reconcile failed')), 5 * 60_000);
          stack.push(async () => clearInterval(timer));
        }

        if (embedded && opts.demo) {
          const publisher = await createPublisher({ kafka, topic: config.kafka.topic, encoder: createEncoderFromConfig(config) });
          const demo = startDemoProducer(publisher, logger);
          stack.push(async () => {
            await demo.stop();
            await publisher.close();
          });
          logger.info('demo producer publishing sample events (embedded mode only; --no-demo to turn off)');
        }
        const progress = setInterval(() => logger.info({ ...worker.totals }, 'ingest progress'), 5000);
        stack.push(async () => clearInterval(progress));

        // A consumer that stopped for good leaves a worker that consumes nothing: exit (non-zero)
        // so a supervisor restarts it, rather than sit in the group holding no partitions.
        const signal = await Promise.race([stopRequested, worker.crashed]).catch((err: unknown) => {
          throw new MeterlineError('KAFKA_CONSUMER_CRASHED', `the Kafka consumer stopped: ${errorMessage(err)}`, { cause: err });
        });
        logger.info({ signal }, 'shutting down: draining the in-flight batch');
      } finally {
        await shutdown();
      }
    });
  withExamples(command, [
    ['everything embedded: dev broker, embedded ClickHouse, Stripe shadow mode, demo events', 'meterline run'],
    ['against real infrastructure', 'KAFKA_BROKERS=kafka-1:9092,kafka-2:9092 CLICKHOUSE_URL=https://ch.internal:8443 STRIPE_API_KEY=sk_live_… meterline run'],
    ['logs as JSON lines even on a terminal', 'LOG_FORMAT=json meterline run --no-demo'],
  ]);
}
