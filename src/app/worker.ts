import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { createDecoderFromConfig } from '../adapters/avro/from-config';
import { createLedgerStore } from '../adapters/clickhouse/ledger-store';
import { createPushStore } from '../adapters/clickhouse/push-store';
import { createStreamStore } from '../adapters/clickhouse/stream-store';
import { createWatermarkStore } from '../adapters/clickhouse/watermark-store';
import type { Config } from '../config/config';
import type { MeterCatalog } from '../domain/meters';
import { pushIntervalMs } from '../domain/push-pace';
import type { BillingSink } from '../ports/billing-sink';
import type { DeadLetterSink } from '../ports/dead-letters';
import { createChangeFeed, type ChangeFeed } from '../pipeline/change-feed';
import { startDedupeFilterFromConfig } from '../pipeline/dedupe-filter-sync';
import { startIngestWorker, type IngestWorker } from '../pipeline/ingest-worker';
import { createPusher, type Pusher } from '../pipeline/pusher';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { createRateLimiter } from '../runtime/rate-limiter';

const DAY_MS = 86_400_000;

/**
 * What every worker part is built from. `wrap` decorates each adapter as it is created (the
 * benchmark times them); absent: as they are.
 */
export interface WorkerContext {
  readonly config: Config;
  readonly ch: ClickHouseClient;
  readonly kafka: Kafka;
  readonly meters: () => MeterCatalog;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Stored with every row this worker ingests: its dedupe filter catches up with everyone else's. */
  readonly ingestedBy: string;
  /**
   * The changes this process's ingest stores, published as each unit is stored, for its pusher
   * and alerter (pipeline/change-feed.ts; its writer is `ingestedBy`). Absent: they read every
   * change from the durable record.
   */
  readonly changes?: ChangeFeed;
  readonly wrap?: <T extends object>(name: string, adapter: T) => T;
}

/**
 * `ctx` with the feed of its own changes (WorkerContext.changes), written as `ctx.ingestedBy`: the
 * identity its ledger rows and change rows carry, so its readers leave exactly those out of the
 * change record.
 */
export function withChangeFeed(ctx: Omit<WorkerContext, 'changes'>): WorkerContext {
  return { ...ctx, changes: createChangeFeed(ctx.ingestedBy) };
}

/**
 * The ingest side of a worker, as `meterline run` and the benchmark start it: the dedupe filter
 * built from the ledger, then the consumer on `topic` in `groupId` (defaults: the configured ones).
 */
export async function startWorkerIngest(
  ctx: WorkerContext,
  opts: { deadLetters: DeadLetterSink; topic?: string; groupId?: string; onFilterBuilt?: (ms: number) => void },
): Promise<IngestWorker> {
  const { config, ch, logger, metrics } = ctx;
  const wrap = ctx.wrap ?? (<T>(_: string, a: T) => a);
  const database = config.clickhouse.database;
  const buildStart = performance.now();
  const dedupeFilter = await startDedupeFilterFromConfig(config, ch, { ingestedBy: ctx.ingestedBy, clock: Date.now, metrics, logger });
  opts.onFilterBuilt?.(performance.now() - buildStart);
  const worker = await startIngestWorker({
    kafka: ctx.kafka,
    dedupeFilter,
    topic: opts.topic ?? config.kafka.topic,
    groupId: opts.groupId ?? config.kafka.groupId,
    logger,
    watermarkStore: wrap('watermarks', createWatermarkStore(ch, database)),
    watermarks: config.aggregate,
    consumer: { sessionTimeout: config.kafka.sessionTimeoutMs, heartbeatInterval: config.kafka.heartbeatIntervalMs, maxWaitTimeInMs: config.kafka.maxWaitTimeMs },
    deps: {
      decoder: wrap('decoder', createDecoderFromConfig(config)),
      meters: ctx.meters,
      ledger: wrap('ledger', createLedgerStore(ch, database, { dedupeWindowMs: config.ingest.dedupeWindowDays * DAY_MS, ingestedBy: ctx.ingestedBy })),
      deadLetters: opts.deadLetters,
      clock: Date.now,
      maxFutureSkewMs: config.ingest.maxFutureSkewMs,
      metrics,
    },
  });
  // Published once the unit is durable (onUnit follows its commit): a reader that takes the
  // changes reads totals that hold them.
  worker.onUnit((outcome) => ctx.changes?.publish(outcome.changes));
  return worker;
}

/** The push loop's pace for the worker it runs in: spaced out while its ingest is far behind (domain/push-pace.ts). */
export function pushPace(worker: Pick<IngestWorker, 'backlog'>): () => number {
  return () => pushIntervalMs(worker.backlog());
}

/** The pusher of a worker: totals from the ledger, the push ledger, the sink, Stripe's rate limit. */
export function createWorkerPusher(ctx: WorkerContext, opts: { sink: BillingSink; meters?: () => MeterCatalog; active?: () => boolean }): Pusher {
  const { config, ch, logger, metrics } = ctx;
  const wrap = ctx.wrap ?? (<T>(_: string, a: T) => a);
  const limiter = createRateLimiter(config.stripe.rateLimitPerSecond);
  return createPusher({
    streams: wrap('streams', createStreamStore(ch, config.clickhouse.database)),
    pushes: wrap('pushes', createPushStore(ch, config.clickhouse.database)),
    sink: opts.sink,
    meters: opts.meters ?? ctx.meters,
    clock: Date.now,
    logger,
    metrics,
    rateLimit: () => limiter.take(),
    billingAnchorDay: config.stripe.billingAnchorDay,
    // A second of Stripe's rate limit in flight: more would only wait in the limiter.
    maxInFlight: config.stripe.rateLimitPerSecond,
    ...(ctx.changes ? { ownChanges: ctx.changes.subscribe() } : {}),
    ...(opts.active ? { active: opts.active } : {}),
  });
}
