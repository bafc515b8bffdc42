import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { WatermarkStore } from '../adapters/clickhouse/watermark-store';
import { isGroupMembershipError } from '../adapters/kafka/kafka';
import { BACKFILL_HEADER } from '../adapters/kafka/publisher';
import { errorMessage } from '../runtime/errors';
import { dedupeKey, type StoredKey } from '../domain/ingest-decision';
import { assign, currentWatermark, observe, type WatermarkOptions, type WatermarkState } from '../domain/watermarks';
import type { Logger } from '../runtime/logger';
import type { SyncedDedupeFilter } from './dedupe-filter-sync';
import { splitUnits, UNIT_MAX_EVENTS } from './ingest-units';
import { addTallies, decideBatch, storeBatch, type BatchOutcome, type DecidedBatch, type IngestDeps, type MeterTally, type RawMessage } from './ingest-batch';
import { runOrdered } from './ordered-units';

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

/** Batches of at most this many partitions are handed over at once by kafkajs (and so form one unit). */
const UNIT_MAX_PARTITIONS = 64;

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
 * The ingest consumer. Offsets are committed by hand, per partition, strictly after the
 * batch they cover is durable (storeBatch resolved), and in unit order. kafkajs' auto-commit is
 * off, so a crash at any instant leaves committed offsets at or behind what is stored — never
 * ahead — and the re-read messages are recognised as redelivered or duplicates by the ledger lookup.
 *
 * The batches of one fetch are stored together as one ingest unit; units are pipelined (the next
 * decided while the previous one is written) and committed in order (see runOrdered): within
 * one worker, two copies of an event in different partitions can never both be taken as new.
 */
export async function startIngestWorker(opts: IngestWorkerOptions): Promise<IngestWorker> {
  const log = opts.logger.child({ module: 'ingest' });
  const totals = emptyTotals();
  const clock = opts.deps.clock;
  const wmOpts: WatermarkOptions = opts.watermarks ?? { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 };
  // Watermarks survive restarts through the watermarks table; rebalances keep the clocks of
  // partitions this worker still owns.
  const store = opts.replay ? undefined : opts.watermarkStore;
  let restored = store ? await store.loadPartitionMaxima(opts.topic) : new Map<number, number>();
  let clocks: WatermarkState = new Map();
  const watermark = () => currentWatermark(clocks, clock(), wmOpts);
  const deps: IngestDeps = { ...opts.deps, watermark, dedupeFilter: opts.dedupeFilter?.filter };
  // Units and the watermark saver run one at a time.
  let exclusive: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = exclusive.then(fn, fn);
    exclusive = run.catch(() => undefined);
    return run;
  };
  // Partitions whose highest event time moved since the watermarks were last saved, and the
  // watermark last saved: window states follow the saved one (it also moves as partitions go idle).
  const unsavedWatermarks = new Set<number>();
  let savedWatermark: number | null = null;
  const saveWatermarks = async () => {
    const wm = watermark();
    if (wm !== null) opts.deps.metrics?.watermarkDelay.set((clock() - wm) / 1000);
    if (!store || (unsavedWatermarks.size === 0 && wm === savedWatermark)) return;
    const saving = new Map([...unsavedWatermarks].map((p) => [p, restored.get(p)!]));
    unsavedWatermarks.clear();
    await store.save(opts.topic, saving, wm, clock());
    savedWatermark = wm;
  };
  const listeners: ((o: BatchOutcome, positions: ReadonlyMap<number, BatchPosition>) => void)[] = [];
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
    // Partitions may come from another worker: the filter first learns everything stored lately.
    opts.dedupeFilter?.rebalanced();
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

  // One ingest unit = the batches of every partition that one fetch returned (up to
  // UNIT_MAX_EVENTS). kafkajs hands the batches of a fetch to concurrent eachBatch calls (one
  // per partition); each call parks its batch here and waits until the unit holding it is
  // stored and committed. Per unit, ClickHouse sees one lookup, one ledger INSERT and one
  // counter recomputation instead of one per partition: their fixed cost, not the rows, is
  // what limits a small batch. Units are decided one at a time, each while at most one earlier
  // unit is still being written, so within this worker two copies of an event, even in
  // different partitions, never both pass as new: a later unit sees the earlier one's keys in
  // the ledger or, while its writes are in flight, in `inFlight`; within a unit decideDedupe
  // keeps the first copy.
  type Batch = { readonly topic: string; readonly partition: number; readonly highWatermark: string; readonly messages: readonly KafkaMessage[] };
  type Parked = { readonly batch: Batch; readonly heartbeat: () => Promise<void>; readonly done: (err?: unknown) => void };
  let parked: Parked[] = [];
  let unitScheduled = false;

  // Keys decided new by units whose writes are in flight (see decideBatch).
  const inFlight = new Map<string, StoredKey>();
  const unitDeps: IngestDeps = { ...deps, inFlight };
  type Decided = { readonly batches: readonly Batch[]; readonly decided: DecidedBatch; readonly end?: () => void; outcome?: BatchOutcome };

  // 1. Decide: in memory (plus the lookups of keys the filter cannot prove absent).
  const decideUnit = async (batches: readonly Batch[]): Promise<Decided> => {
    const end = opts.deps.metrics?.batchDuration.startTimer();
    const messages: RawMessage[] = [];
    for (const b of batches) {
      for (const m of b.messages) {
        messages.push({
          ref: { topic: b.topic, partition: b.partition, offset: m.offset },
          key: m.key,
          value: m.value,
          backfill: m.headers?.[BACKFILL_HEADER]?.toString() === '1',
        });
      }
    }
    // The dedupe filter first learns the keys other workers stored (when due, and after a rebalance).
    await opts.dedupeFilter?.catchUp();
    return { batches, decided: await decideBatch(messages, unitDeps), end };
  };

  // 2. Store: after this, every message of the unit is durable in exactly one table, and its
  //    windows' totals are queryable (ClickHouse aggregates them with the rows). Its keys are
  //    then in the ledger.
  const storeUnit = async (unit: Decided): Promise<void> => {
    unit.outcome = await storeBatch(unit.decided, unitDeps);
    for (const d of unit.decided.decisions) if (d.kind === 'new') inFlight.delete(dedupeKey(d.candidate.event.tenant, d.candidate.event.id));
    opts.dedupeFilter?.report();
  };

  // 3. Commit, in unit order, one past the last stored offset of each partition, in one request.
  //    If the commit fails (rebalance), the next owner re-reads these messages and finds them stored.
  const commitUnit = async ({ batches, outcome, end, decided }: Decided): Promise<void> => {
    if (!outcome) throw new Error('an ingest unit reached its commit without being stored');
    const positions = new Map<number, BatchPosition>();
    for (const b of batches) positions.set(b.partition, { next: (BigInt(b.messages[b.messages.length - 1]!.offset) + 1n).toString(), highWatermark: b.highWatermark });
    if (opts.replay?.commit !== false) {
      const offsets = [...positions].map(([partition, p]) => ({ topic: opts.topic, partition, offset: p.next }));
      try {
        await consumer.commitOffsets(offsets);
        for (const o of offsets) opts.deps.metrics?.committedOffset.set({ partition: String(o.partition) }, Number(o.offset));
      } catch (err) {
        // Refused because the group is rebalancing (another worker joined or died): the unit is
        // stored, so whoever owns its partitions next re-reads it and finds it stored. Not a
        // crash: kafkajs rejoins on its next heartbeat (rethrown, a wrapped rebalance error
        // would stop the consumer for good).
        if (!isGroupMembershipError(err)) throw err;
        log.info({ offsets, reason: errorMessage(err) }, 'offset commit refused by a rebalance; the unit is stored and will be recognised when re-read');
      }
    }
    // 4. Advance each partition's watermark (in memory, and as a restart hint for the live worker).
    for (const b of batches) {
      const max = outcome.maxEventTimeByPartition.get(b.partition) ?? null;
      clocks = observe(clocks, b.partition, max, clock());
      if (store && max !== null) {
        restored = new Map(restored).set(b.partition, Math.max(max, restored.get(b.partition) ?? -Infinity));
        unsavedWatermarks.add(b.partition);
      }
    }
    // Saved by the timer below, at most once a second, and when the worker stops (a restart
    // hint: a restarted worker's watermark may lag, never lead).
    opts.deps.metrics?.eventToCounterLatency.observe(Math.max(0, clock() - decided.now) / 1000);
    end?.();
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
    for (const l of listeners) l(outcome, positions);
  };

  /**
   * Stores what is parked, in units of whole batches, pipelined: unit n+1 is decided while unit
   * n is written, commits stay in unit order (runOrdered), a group heartbeat after each commit.
   */
  const ingestParked = async () => {
    unitScheduled = false;
    const all = parked;
    parked = [];
    // A unit must never outlast the session timeout, or the group evicts this worker and its
    // commit fails: a big fetch is stored in several units of at most UNIT_MAX_EVENTS (unless
    // one batch alone is bigger).
    const units = splitUnits(all, (p) => p.batch.messages.length, UNIT_MAX_EVENTS);
    try {
      await runOrdered(units, {
        decide: (unit) => decideUnit(unit.map((u) => u.batch)),
        store: storeUnit,
        commit: async (decided, index) => {
          await commitUnit(decided);
          const unit = units[index]!;
          for (const u of unit) u.done();
          await unit[0]!.heartbeat().catch((err: unknown) => {
            if (!isGroupMembershipError(err)) log.warn({ err }, 'group heartbeat between ingest units failed');
          });
        },
      });
    } catch (err) {
      // Nothing after the failed unit was committed and nothing is still being written: kafkajs
      // re-reads all of it, and its keys are decided again from the ledger.
      inFlight.clear();
      for (const u of all) u.done(err);
    }
  };

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: UNIT_MAX_PARTITIONS,
    eachBatch: async ({ batch, heartbeat, isStale, resolveOffset }) => {
      if (batch.messages.length === 0 || isStale()) return;
      let messages: readonly KafkaMessage[] = batch.messages;
      if (opts.replay) {
        // A replay covers the offsets that existed when it started, nothing newer.
        const replayEnd = opts.replay.endOffsets.get(batch.partition);
        messages = replayEnd === undefined ? [] : messages.filter((m) => BigInt(m.offset) < replayEnd);
        if (messages.length < batch.messages.length) consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
        if (messages.length === 0) return;
      }
      await new Promise<void>((resolve, reject) => {
        parked.push({
          batch: { topic: batch.topic, partition: batch.partition, highWatermark: batch.highWatermark, messages },
          heartbeat,
          done: (err) => (err === undefined ? resolve() : reject(err)),
        });
        // The first batch of a fetch schedules the unit after this turn, when its siblings are parked too.
        if (!unitScheduled) {
          unitScheduled = true;
          setImmediate(() => void serially(ingestParked));
        }
      });
      // Stored and committed: move kafkajs' fetch position past the batch.
      resolveOffset(messages[messages.length - 1]!.offset);
    },
  });
  log.info({ topic: opts.topic, groupId: opts.groupId }, 'ingest consumer started');
  // Also on an idle topic: its watermark moves as partitions go idle, and window states with it.
  const saveTimer = setInterval(() => {
    serially(saveWatermarks).catch((err) => log.warn({ err }, 'could not save watermarks'));
  }, opts.watermarkSaveIntervalMs ?? 1_000);
  return {
    totals,
    watermark,
    onUnit: (l) => listeners.push(l),
    status: () => ({ ...status, partitions: [...status.partitions] }),
    owns: (partition) => assigned !== null && assigned.includes(partition) && clock() - lastContact < sessionTimeout / 2,
    crashed,
    async stop() {
      clearInterval(saveTimer);
      assigned = null;
      // kafkajs' disconnect waits for the running eachBatch (store + commit) to finish first.
      await consumer.disconnect();
      await exclusive;
      // Leave the watermarks (and so window states) as the last unit put them.
      await serially(saveWatermarks).catch((err) => log.warn({ err }, 'could not save watermarks'));
      log.info(totals, 'ingest consumer stopped');
    },
  };
}
