import type { Consumer, Kafka } from 'kafkajs';
import type { CounterStore } from '../adapters/clickhouse/counter-store';
import { isGroupMembershipError } from '../adapters/kafka/kafka';
import { BACKFILL_HEADER } from '../adapters/kafka/publisher';
import { errorMessage } from '../runtime/errors';
import { assign, currentWatermark, observe, type WatermarkOptions, type WatermarkState } from '../domain/watermarks';
import type { Logger } from '../runtime/logger';
import { settleCounters } from './counters';
import { addTallies, ingestBatch, type BatchOutcome, type IngestDeps, type MeterTally, type RawMessage } from './ingest-batch';

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
  batches: number;
  /** The same decisions per meter. */
  byMeter: Record<string, MeterTally>;
}

export function emptyTotals(): IngestTotals {
  return { consumed: 0, accepted: 0, duplicates: 0, conflicts: 0, redelivered: 0, rejected: 0, skipped: 0, tooLate: 0, lateCounted: 0, batches: 0, byMeter: {} };
}

export interface IngestWorker {
  /** Drains the in-flight batch (stored and committed), leaves the group, resolves. */
  stop(): Promise<void>;
  readonly totals: Readonly<IngestTotals>;
  /** The worker's current event-time watermark (ms), or null while unknown. */
  watermark(): number | null;
  /** Called after each batch has been committed (for tests, progress logging and health). */
  onBatch(listener: (outcome: BatchOutcome, partition: number, position: BatchPosition) => void): void;
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

export interface IngestStatus {
  /** Connected to the cluster (no disconnect or crash since). */
  readonly connected: boolean;
  /** False once the consumer crashed and kafkajs did not restart it (the worker then does nothing). */
  readonly running: boolean;
  /** Partitions of the topic this worker currently owns. */
  readonly partitions: readonly number[];
}

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
  readonly deps: Omit<IngestDeps, 'watermark' | 'counters'>;
  /** Maintains windowed counters and their states; absent: ledger only. */
  readonly counters?: CounterStore;
  readonly watermarks?: WatermarkOptions;
  readonly logger: Logger;
  readonly consumer?: { sessionTimeout?: number; heartbeatInterval?: number; maxWaitTimeInMs?: number; maxBytesPerPartition?: number };
  /**
   * Replay: its watermark starts from nothing and is never saved (the live worker's watermark
   * would make the very events being restored look too late), messages at or past the end
   * offsets are not processed, and a partition that reached its end is paused.
   */
  readonly replay?: ReplayMode;
}

/**
 * The ingest consumer. Offsets are committed by hand, per partition, strictly after the
 * batch they cover is durable (ingestBatch resolved). kafkajs' auto-commit is off, so a crash
 * at any instant leaves committed offsets at or behind what is stored — never ahead — and the
 * re-read messages are recognised as redelivered or duplicates by the ledger lookup.
 *
 * Batches are processed one at a time (partitionsConsumedConcurrently = 1): within one worker,
 * two copies of an event in different partitions can never race past the dedupe lookup.
 */
export async function startIngestWorker(opts: IngestWorkerOptions): Promise<IngestWorker> {
  const log = opts.logger.child({ module: 'ingest' });
  const totals = emptyTotals();
  const clock = opts.deps.clock;
  const wmOpts: WatermarkOptions = opts.watermarks ?? { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 };
  // Watermarks survive restarts through the watermarks table; rebalances keep the clocks of
  // partitions this worker still owns.
  let restored = opts.counters && !opts.replay ? await opts.counters.loadWatermarks(opts.topic) : new Map<number, number>();
  let clocks: WatermarkState = new Map();
  const watermark = () => currentWatermark(clocks, clock(), wmOpts);
  const deps: IngestDeps = { ...opts.deps, watermark, counters: opts.counters };
  // Batches and the settle timer touch counters one at a time.
  let exclusive: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = exclusive.then(fn, fn);
    exclusive = run.catch(() => undefined);
    return run;
  };
  const settle = async () => {
    if (!opts.counters) return;
    const wm = watermark();
    if (wm !== null) opts.deps.metrics?.watermarkDelay.set((clock() - wm) / 1000);
    await settleCounters(opts.counters, wm, clock());
  };
  const listeners: ((o: BatchOutcome, p: number, pos: BatchPosition) => void)[] = [];
  const status = { connected: false, running: true, partitions: [] as number[] };
  const sessionTimeout = opts.consumer?.sessionTimeout ?? 30_000;
  // Ownership as the group coordinator last confirmed it: null while (re)joining.
  let assigned: readonly number[] | null = null;
  let lastContact = 0;
  let crash: (err: Error) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => (crash = reject));
  crashed.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
  const consumer: Consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout,
    heartbeatInterval: opts.consumer?.heartbeatInterval ?? 3_000,
    maxWaitTimeInMs: opts.consumer?.maxWaitTimeInMs ?? 250,
    maxBytesPerPartition: opts.consumer?.maxBytesPerPartition ?? 2 * 1024 * 1024,
    allowAutoTopicCreation: false,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const partitions = e.payload.memberAssignment[opts.topic] ?? [];
    clocks = assign(clocks, partitions, clock(), restored);
    status.partitions = [...partitions];
    assigned = partitions;
    lastContact = clock();
    log.info({ partitions }, 'partitions assigned');
  });
  consumer.on(consumer.events.CONNECT, () => (status.connected = true));
  consumer.on(consumer.events.DISCONNECT, () => (status.connected = false));
  consumer.on(consumer.events.REBALANCING, () => {
    status.partitions = [];
    assigned = null;
  });
  consumer.on(consumer.events.HEARTBEAT, () => {
    lastContact = clock();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    status.connected = false;
    assigned = null;
    if (e.payload.restart) {
      log.warn({ err: e.payload.error }, 'ingest consumer failed; kafkajs restarts it from the last committed offsets');
      return;
    }
    status.running = false;
    log.error({ err: e.payload.error }, 'the Kafka consumer stopped for good');
    crash(e.payload.error);
  });
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, heartbeat, isStale, resolveOffset }) => {
      if (batch.messages.length === 0 || isStale()) return;
      let batchMessages = batch.messages;
      const replayEnd = opts.replay?.endOffsets.get(batch.partition);
      if (opts.replay) {
        // A replay covers the offsets that existed when it started, nothing newer.
        batchMessages = replayEnd === undefined ? [] : batchMessages.filter((m) => BigInt(m.offset) < replayEnd);
        if (batchMessages.length < batch.messages.length) consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
        if (batchMessages.length === 0) return;
      }
      const end = opts.deps.metrics?.batchDuration.startTimer();
      const messages: RawMessage[] = batchMessages.map((m) => ({
        ref: { topic: batch.topic, partition: batch.partition, offset: m.offset },
        key: m.key,
        value: m.value,
        backfill: m.headers?.[BACKFILL_HEADER]?.toString() === '1',
      }));
      // 1. Store: after this, every message of the batch is durable in exactly one table, and
      //    the counters of the windows it touched are recomputed.
      const outcome = await serially(() => ingestBatch(messages, deps));
      // 2. Only now advance: resolveOffset moves kafkajs' fetch position past the batch, and the
      //    commit (one past the last stored offset) makes it survive a restart. If the commit
      //    fails (rebalance), the next owner re-reads these messages and finds them stored.
      const last = batchMessages[batchMessages.length - 1]!.offset;
      resolveOffset(last);
      const next = BigInt(last) + 1n;
      if (opts.replay?.commit !== false) {
        try {
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next.toString() }]);
          opts.deps.metrics?.committedOffset.set({ partition: String(batch.partition) }, Number(next));
        } catch (err) {
          // Refused because the group is rebalancing (another worker joined or died): the batch
          // is stored, so whoever owns the partition next re-reads it and finds it stored. Not a
          // crash: kafkajs rejoins on its next heartbeat (rethrown, a wrapped rebalance error
          // would stop the consumer for good).
          if (!isGroupMembershipError(err)) throw err;
          log.info({ partition: batch.partition, next: next.toString(), reason: errorMessage(err) }, 'offset commit refused by a rebalance; the batch is stored and will be recognised when re-read');
        }
      }
      // 3. Advance this partition's watermark (in memory, and as a restart hint for the live worker).
      clocks = observe(clocks, batch.partition, outcome.maxEventTime, clock());
      if (opts.counters && !opts.replay && outcome.maxEventTime !== null) {
        restored = new Map(restored).set(batch.partition, Math.max(outcome.maxEventTime, restored.get(batch.partition) ?? -Infinity));
        await opts.counters.saveWatermarks(opts.topic, new Map([[batch.partition, restored.get(batch.partition)!]]), clock());
      }
      // Windows the watermark passed become closed / final on the 1 s settle timer below:
      // scanning the unsettled counters after every batch would cost more than it brings.
      const updatedAt = clock();
      for (const c of outcome.counters) opts.deps.metrics?.eventToCounterLatency.observe(Math.max(0, updatedAt - c.lastIngestedAt) / 1000);
      end?.();
      totals.batches += 1;
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
      for (const l of listeners) l(outcome, batch.partition, { next: next.toString(), highWatermark: batch.highWatermark });
      await heartbeat().catch((err: unknown) => {
        if (!isGroupMembershipError(err)) throw err;
      });
    },
  });
  log.info({ topic: opts.topic, groupId: opts.groupId }, 'ingest consumer started');
  // Idle topics still move windows to closed / final as partitions go idle.
  const settleTimer = setInterval(() => {
    serially(settle).catch((err) => log.warn({ err }, 'could not settle counters'));
  }, 1000);
  return {
    totals,
    watermark,
    onBatch: (l) => listeners.push(l),
    status: () => ({ ...status, partitions: [...status.partitions] }),
    owns: (partition) => assigned !== null && assigned.includes(partition) && clock() - lastContact < sessionTimeout / 2,
    crashed,
    async stop() {
      clearInterval(settleTimer);
      assigned = null;
      // kafkajs' disconnect waits for the running eachBatch (store + commit) to finish first.
      await consumer.disconnect();
      await exclusive;
      // Leave window states as the last batch's watermark puts them.
      await serially(settle).catch((err) => log.warn({ err }, 'could not settle counters'));
      log.info(totals, 'ingest consumer stopped');
    },
  };
}
