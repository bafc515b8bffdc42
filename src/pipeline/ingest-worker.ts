import type { Kafka } from 'kafkajs';
import { createKafkaEventSource } from '../adapters/kafka/kafka-event-source';
import type { WatermarkOptions } from '../domain/watermarks';
import type { WatermarkStore } from '../ports/watermarks';
import type { SourceStatus } from '../ports/event-source';
import type { Logger } from '../runtime/logger';
import type { SyncedDedupeFilter } from './dedupe-filter-sync';
import { createEventTime } from './event-time';
import { addTallies, type BatchOutcome, type IngestDeps, type MeterTally } from './ingest-batch';
import { ingestLoop } from './ingest-loop';

export interface IngestTotals {
  consumed: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  redelivered: number;
  rejected: number;
  skipped: number;
  tooLate: number;
  lateCounted: number;
  /** Ingest units stored (each the batches of one fetch, across partitions). */
  units: number;
  /** The same decisions per meter. */
  byMeter: Record<string, MeterTally>;
}

export function emptyTotals(): IngestTotals {
  return { consumed: 0, accepted: 0, duplicates: 0, conflicts: 0, redelivered: 0, rejected: 0, skipped: 0, tooLate: 0, lateCounted: 0, units: 0, byMeter: {} };
}

export interface IngestWorker {
  /** Drains the in-flight batch (stored and committed), leaves the group, resolves. */
  stop(): Promise<void>;
  readonly totals: Readonly<IngestTotals>;
  /** The worker's current event-time watermark (ms), or null while unknown. */
  watermark(): number | null;
  /**
   * Called after each ingest unit (the batches of several partitions) has been stored and
   * committed, with where it left each of its partitions (for progress, health and tests).
   */
  onUnit(listener: (outcome: BatchOutcome, positions: ReadonlyMap<number, BatchPosition>) => void): void;
  /**
   * Messages waiting on this worker's partitions, as its last committed unit of each saw them
   * (the partition's end at fetch time − where the unit left it). 0 when caught up or unassigned.
   */
  backlog(): number;
  /** What the consumer reports about itself, for health checks. */
  status(): IngestStatus;
  /**
   * Whether this worker owns `partition` right now: assigned at the last join, no rebalance under
   * way, and in contact with the group coordinator within half a session timeout (a worker cut
   * off longer may already have been replaced).
   */
  owns(partition: number): boolean;
  /** Rejects if the consumer stopped for good (a crash kafkajs does not restart): the worker is then useless. */
  readonly crashed: Promise<never>;
}

/** Where a committed batch left its partition: `highWatermark − next` messages are still waiting. */
export interface BatchPosition {
  readonly next: string;
  readonly highWatermark: string;
}

/** Messages still waiting on the partition after a batch (0 at its end). */
export function waitingAfter(position: BatchPosition): number {
  return Math.max(0, Number(BigInt(position.highWatermark) - BigInt(position.next)));
}

export type IngestStatus = SourceStatus;

/** How a replay differs from the live consumer. */
export interface ReplayMode {
  /** Per partition, the offset (exclusive) where the replay ends, snapshotted when it started. */
  readonly endOffsets: ReadonlyMap<number, bigint>;
  /** false for a dry run: offsets are never committed. */
  readonly commit: boolean;
}


export interface IngestWorkerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  readonly deps: Omit<IngestDeps, 'watermark' | 'dedupeFilter'>;
  /** The in-memory filter of the ledger's keys (built by the caller); absent: every key is looked up. */
  readonly dedupeFilter?: SyncedDedupeFilter;
  /**
   * Persists event time (partition maxima and the worker's watermark, from which window states
   * are computed where they are read); absent: nothing is saved and a restart starts from nothing.
   */
  readonly watermarkStore?: WatermarkStore;
  readonly watermarks?: WatermarkOptions;
  readonly logger: Logger;
  readonly consumer?: { sessionTimeout?: number; heartbeatInterval?: number; maxWaitTimeInMs?: number; maxBytesPerPartition?: number };
  /**
   * Replay: its watermark starts from nothing and is never saved (the live worker's watermark
   * would make the very events being restored look too late), messages at or past the end
   * offsets are not processed, and a partition that reached its end is paused.
   */
  readonly replay?: ReplayMode;
  /** How often a moved watermark is saved (default 1 s): window states follow it where they are read. */
  readonly watermarkSaveIntervalMs?: number;
}

/**
 * The ingest worker: the Kafka event source (src/adapters/kafka/kafka-event-source.ts) feeding
 * the ingest loop (ingest-loop.ts: decide → store → commit → advance event time), plus the
 * worker's event time, its totals and the dedupe filter's rebalance hook.
 */
export async function startIngestWorker(opts: IngestWorkerOptions): Promise<IngestWorker> {
  const log = opts.logger.child({ module: 'ingest' });
  const clock = opts.deps.clock;
  const totals = emptyTotals();
  // A replay's watermark starts from nothing and is never saved (see IngestWorkerOptions.replay).
  const eventTime = createEventTime({
    store: opts.replay ? undefined : opts.watermarkStore,
    topic: opts.topic,
    clock,
    watermarks: opts.watermarks ?? { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 },
    metrics: opts.deps.metrics,
  });
  await eventTime.restore();
  const source = await createKafkaEventSource({
    kafka: opts.kafka,
    topic: opts.topic,
    groupId: opts.groupId,
    logger: opts.logger,
    clock,
    metrics: opts.deps.metrics,
    consumer: opts.consumer,
    replay: opts.replay,
  });
  // Per owned partition: messages waiting after its last committed unit (see backlog()).
  const waiting = new Map<number, number>();
  source.onAssigned((partitions) => {
    for (const p of waiting.keys()) if (!partitions.includes(p)) waiting.delete(p);
    eventTime.assigned(partitions);
    // Partitions may come from another worker: the filter first learns everything stored lately.
    opts.dedupeFilter?.rebalanced();
  });
  const listeners: ((o: BatchOutcome, positions: ReadonlyMap<number, BatchPosition>) => void)[] = [];
  await source.start(
    ingestLoop({
      source,
      deps: { ...opts.deps, watermark: eventTime.watermark, dedupeFilter: opts.dedupeFilter?.filter },
      eventTime,
      dedupeFilter: opts.dedupeFilter,
      metrics: opts.deps.metrics,
      logger: log,
      onCommitted: (outcome, unit) => {
        addOutcome(totals, outcome);
        const positions = new Map(unit.map((b) => [b.partition, { next: b.next, highWatermark: b.highWatermark }]));
        for (const [partition, position] of positions) waiting.set(partition, waitingAfter(position));
        for (const l of listeners) l(outcome, positions);
      },
    }),
  );
  // At most once a second (also on an idle topic: its watermark moves as partitions go idle, and
  // window states with it), and when the worker stops. A restart hint: it may lag, never lead.
  const saveTimer = setInterval(() => {
    eventTime.save().catch((err) => log.warn({ err }, 'could not save watermarks'));
  }, opts.watermarkSaveIntervalMs ?? 1_000);
  return {
    totals,
    watermark: eventTime.watermark,
    onUnit: (l) => listeners.push(l),
    backlog: () => {
      let n = 0;
      for (const w of waiting.values()) n += w;
      return n;
    },
    status: () => source.status(),
    owns: (partition) => source.owns(partition),
    crashed: source.crashed,
    async stop() {
      clearInterval(saveTimer);
      await source.stop();
      await eventTime.save().catch((err) => log.warn({ err }, 'could not save watermarks'));
      log.info(totals, 'ingest consumer stopped');
    },
  };
}

function addOutcome(totals: IngestTotals, outcome: BatchOutcome): void {
  totals.units += 1;
  totals.consumed += outcome.consumed;
  totals.accepted += outcome.accepted;
  totals.duplicates += outcome.duplicates;
  totals.conflicts += outcome.conflicts;
  totals.redelivered += outcome.redelivered;
  totals.rejected += outcome.rejected;
  totals.skipped += outcome.skipped;
  totals.tooLate += outcome.tooLate;
  totals.lateCounted += outcome.lateCounted;
  addTallies(totals.byMeter, outcome.byMeter);
}
