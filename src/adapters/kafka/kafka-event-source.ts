import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { EventSource, SourceBatch, SourceStatus, SourceUnit, UnitHandler } from '../../ports/event-source';
import type { Clock } from '../../ports/clock';
import type { Logger } from '../../runtime/logger';
import type { Metrics } from '../../runtime/metrics';
import { errorMessage } from '../../runtime/errors';
import { splitByWeight } from '../../domain/split-by-weight';
import { UNIT_MAX_EVENTS } from '../../pipeline/ingest-units';
import { isGroupMembershipError } from './kafka';
import { groupFence } from './group-fence';
import { BACKFILL_HEADER } from './publisher';

/** Batches of at most this many partitions are handed over at once by kafkajs (and so form one unit). */
const UNIT_MAX_PARTITIONS = 64;

/**
 * The worker's fetches (also the benchmark baseline's, so the two read alike). A fetch brings at
 * most `maxBytes` (kafkajs's default is 10 MiB): usage events are ~130 bytes on the wire, so 4 MiB
 * is about 30,000 events, one unit (UNIT_MAX_EVENTS); a bigger fetch only sits decoded in memory,
 * waiting its turn behind the units in flight.
 */
export const WORKER_FETCH = { maxWaitTimeInMs: 250, maxBytesPerPartition: 2 * 1024 * 1024, maxBytes: 4 * 1024 * 1024 } as const;

export interface KafkaEventSourceOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics?: Metrics;
  readonly consumer?: { sessionTimeout?: number; heartbeatInterval?: number; maxWaitTimeInMs?: number; maxBytesPerPartition?: number };
  /**
   * A replay: per partition the offset (exclusive) where it ends — messages at or past it are not
   * delivered and the partition is paused — and whether offsets are committed (false: a dry run).
   */
  readonly replay?: { readonly endOffsets: ReadonlyMap<number, bigint>; readonly commit: boolean };
}

/**
 * The usage topic through a kafkajs consumer group: auto-commit off (offsets move only through
 * `commit`), the batches of one fetch gathered into units, a group heartbeat after each commit.
 *
 * kafkajs hands the batches of a fetch to concurrent eachBatch calls (one per partition); each
 * call parks its batch here and waits until the unit holding it is committed. Per unit, ClickHouse
 * then sees one lookup and one INSERT per table instead of one per partition: their fixed cost,
 * not the rows, is what limits a small batch.
 */
export async function createKafkaEventSource(opts: KafkaEventSourceOptions): Promise<EventSource> {
  const log = opts.logger.child({ module: 'ingest' });
  const clock = opts.clock;
  const status = { connected: false, running: true, partitions: [] as number[] };
  const sessionTimeout = opts.consumer?.sessionTimeout ?? 30_000;
  // Ownership as the group coordinator last confirmed it: null while (re)joining.
  let assigned: readonly number[] | null = null;
  let lastContact = 0;
  const assignedListeners: ((partitions: readonly number[]) => void)[] = [];
  let crash: (err: Error) => void = () => undefined;
  const crashed = new Promise<never>((_, reject) => (crash = reject));
  crashed.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection

  const consumer: Consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout,
    heartbeatInterval: opts.consumer?.heartbeatInterval ?? 3_000,
    maxWaitTimeInMs: opts.consumer?.maxWaitTimeInMs ?? WORKER_FETCH.maxWaitTimeInMs,
    maxBytesPerPartition: opts.consumer?.maxBytesPerPartition ?? WORKER_FETCH.maxBytesPerPartition,
    maxBytes: WORKER_FETCH.maxBytes,
    allowAutoTopicCreation: false,
  });
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const partitions = e.payload.memberAssignment[opts.topic] ?? [];
    status.partitions = [...partitions];
    assigned = partitions;
    lastContact = clock();
    fence.joined(e.payload.memberId);
    for (const l of assignedListeners) l(partitions);
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
  const stopForGood = (err: Error, why: string) => {
    status.running = false;
    log.error({ err }, why);
    crash(err);
  };
  consumer.on(consumer.events.CRASH, (e) => {
    status.connected = false;
    assigned = null;
    if (e.payload.restart) {
      log.warn({ err: e.payload.error }, 'ingest consumer failed; kafkajs restarts it from the last committed offsets');
      return;
    }
    stopForGood(e.payload.error, 'the Kafka consumer stopped for good');
  });

  // Batches parked by eachBatch calls until their fetch's units are accepted (or refused).
  type Outcome = 'accepted' | 'dropped' | { readonly error: unknown };
  type Parked = { readonly batch: SourceBatch; readonly heartbeat: () => Promise<void>; readonly isStale: () => boolean; readonly done: (o: Outcome) => void };
  let parked: Parked[] = [];
  let unitScheduled = false;
  let stopping = false;
  let handler: UnitHandler | null = null;
  /** A group heartbeat per accepted unit not yet committed, sent once it is. */
  const heartbeatOf = new Map<SourceUnit, () => Promise<void>>();
  let running: Promise<void> = Promise.resolve();
  let heartbeats: Promise<void> = Promise.resolve();
  /** Resolves once no hand-over is running and every accepted unit is committed or rewound. */
  const settled = async () => {
    await running;
    await handler?.drain();
  };
  // Before kafkajs rejoins or leaves the group, every unit accepted here is stored (or failed):
  // no other worker can be given a partition while this one still writes its messages.
  const fence = groupFence(settled);

  const handParkedOver = async () => {
    unitScheduled = false;
    const all = parked;
    parked = [];
    // Fetched before a rewind (kafkajs reads them again from the rewound offsets) or while stopping.
    const live = all.filter((p) => {
      if (handler && !stopping && !p.isStale()) return true;
      p.done('dropped');
      return false;
    });
    if (live.length === 0 || !handler) return;
    // A unit must never outlast the session timeout, or the group evicts this worker and its
    // commit fails: a big fetch goes in units of at most UNIT_MAX_EVENTS (unless one batch alone is bigger).
    const groups = splitByWeight(live, (p) => p.batch.messages.length, UNIT_MAX_EVENTS);
    const units: SourceUnit[] = groups.map((g) => g.map((p) => p.batch));
    units.forEach((u, i) => heartbeatOf.set(u, groups[i]![0]!.heartbeat));
    try {
      await handler.accept(units);
      for (const p of live) p.done('accepted');
    } catch (error) {
      // Units not accepted are delivered again by kafkajs (their offsets were never resolved).
      for (const u of units) heartbeatOf.delete(u);
      for (const p of live) p.done({ error });
    }
  };

  return {
    async start(ingest) {
      handler = ingest;
      await consumer.connect();
      await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: UNIT_MAX_PARTITIONS,
        eachBatch: async ({ batch, heartbeat, isStale, resolveOffset }) => {
          if (batch.messages.length === 0 || isStale() || stopping) return;
          let messages: readonly KafkaMessage[] = batch.messages;
          if (opts.replay) {
            // A replay covers the offsets that existed when it started, nothing newer.
            const end = opts.replay.endOffsets.get(batch.partition);
            messages = end === undefined ? [] : messages.filter((m) => BigInt(m.offset) < end);
            if (messages.length < batch.messages.length) consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
            if (messages.length === 0) return;
          }
          const last = messages[messages.length - 1]!.offset;
          const outcome = await new Promise<Outcome>((done) => {
            parked.push({
              batch: {
                partition: batch.partition,
                highWatermark: batch.highWatermark,
                next: (BigInt(last) + 1n).toString(),
                messages: messages.map((m) => ({
                  ref: { topic: batch.topic, partition: batch.partition, offset: m.offset },
                  key: m.key,
                  value: m.value,
                  backfill: m.headers?.[BACKFILL_HEADER]?.toString() === '1',
                })),
              },
              heartbeat,
              isStale,
              done,
            });
            // The first batch of a fetch schedules the hand-over after this turn, when its siblings are parked too.
            if (!unitScheduled) {
              unitScheduled = true;
              setImmediate(() => {
                running = running.then(handParkedOver);
              });
            }
          });
          if (outcome === 'dropped') return;
          if (outcome !== 'accepted') throw outcome.error;
          // Accepted (decided, its writes under way, committed later in order): kafkajs may fetch
          // past the batch now. A rewind moves it back if the unit then fails to store.
          resolveOffset(last);
        },
      });
      log.info({ topic: opts.topic, groupId: opts.groupId }, 'ingest consumer started');
    },

    async commit(unit) {
      if (opts.replay?.commit !== false) {
        const offsets = unit.map((b) => ({ topic: opts.topic, partition: b.partition, offset: b.next }));
        try {
          await consumer.commitOffsets(offsets);
          for (const o of offsets) opts.metrics?.committedOffset.set({ partition: String(o.partition) }, Number(o.offset));
        } catch (err) {
          // Refused because the group is rebalancing (another worker joined or died): the unit is
          // stored, so whoever owns its partitions next re-reads it and finds it stored. Not a
          // crash: kafkajs rejoins on its next heartbeat (rethrown, a wrapped rebalance error
          // would stop the consumer for good).
          if (!isGroupMembershipError(err)) throw err;
          log.info({ offsets, reason: errorMessage(err) }, 'offset commit refused by a rebalance; the unit is stored and will be recognised when re-read');
        }
      }
      // A group heartbeat between units keeps a long hand-over inside the session timeout; sent
      // in the background (one at a time), so the unit's bookkeeping does not wait for it.
      const beat = heartbeatOf.get(unit);
      heartbeatOf.delete(unit);
      if (beat) {
        heartbeats = heartbeats.then(beat).catch((err: unknown) => {
          if (!isGroupMembershipError(err)) log.warn({ err }, 'group heartbeat between ingest units failed');
        });
      }
    },

    rewind(units) {
      // Each partition's first uncommitted offset: units are committed in order, so it is the
      // first message of its oldest unit handed back.
      const from = new Map<number, bigint>();
      for (const u of units) {
        heartbeatOf.delete(u);
        for (const b of u) {
          const first = b.messages[0];
          if (!first) continue;
          const offset = BigInt(first.ref.offset);
          const known = from.get(b.partition);
          if (known === undefined || offset < known) from.set(b.partition, offset);
        }
      }
      try {
        for (const [partition, offset] of from) consumer.seek({ topic: opts.topic, partition, offset: offset.toString() });
      } catch (err) {
        // Only when the consumer is gone (stopped or crashed): its next start reads from the
        // committed offsets anyway. Never go on without the rewind: stop for good instead.
        stopForGood(err instanceof Error ? err : new Error(String(err)), 'could not move the read position back to the first uncommitted offsets');
        return;
      }
      if (from.size > 0) log.info({ partitions: Object.fromEntries(from) }, 'ingest rewound to the first uncommitted offsets');
    },

    onAssigned: (l) => void assignedListeners.push(l),
    owns: (partition) => assigned !== null && assigned.includes(partition) && clock() - lastContact < sessionTimeout / 2,
    status: (): SourceStatus => ({ ...status, partitions: [...status.partitions] }),
    crashed,
    async stop() {
      assigned = null;
      // No new units (and no more fetching); the ones accepted are stored and committed before
      // the group is left.
      stopping = true;
      try {
        consumer.pause([{ topic: opts.topic }]);
      } catch {
        // Not running (never started, or crashed): nothing is being fetched.
      }
      await settled();
      await consumer.disconnect();
      fence.release();
      await heartbeats;
    },
  };
}
