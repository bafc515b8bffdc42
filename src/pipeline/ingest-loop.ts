import type { StoredKey } from '../domain/ingest-decision';
import type { EventSource, SourceUnit, UnitHandler } from '../ports/event-source';
import type { Metrics } from '../runtime/metrics';
import type { SyncedDedupeFilter } from './dedupe-filter-sync';
import type { EventTime } from './event-time';
import { decideBatch, storeBatch, type BatchOutcome, type DecidedBatch, type IngestDeps } from './ingest-batch';
import { createOrderedUnits } from './ordered-units';
import { createRecentKeys } from './recent-keys';
import type { Logger } from '../runtime/logger';

/** Keys of this worker's latest stored units kept to answer copies without a lookup (~15 MB). */
const RECENTLY_STORED_KEYS = 50_000;

interface Unit {
  readonly unit: SourceUnit;
  readonly decided: DecidedBatch;
  readonly end?: () => void;
  outcome?: BatchOutcome;
}

/**
 * The ingest loop: for each unit, **decide → store → commit → advance event time**.
 *
 * Units are pipelined (ordered-units.ts), across fetches: unit n+1 is decided while unit n's
 * writes are in flight, and offsets are committed strictly in unit order, each only after its own
 * unit is durable — so a kill -9 at any instant leaves committed offsets at or behind what is
 * stored, never ahead, and re-read messages are recognised by the ledger as redelivered or
 * duplicates. (The source lets no other worker take a partition while writes for it are in
 * flight: see kafka-event-source.ts.)
 *
 * Within this worker two copies of an event never both pass as new: a unit's new keys are in
 * `inFlight` (and the dedupe filter) from its decision until its writes land, where the next
 * unit's decision finds them; within a unit decideBatch keeps the first copy.
 */
export function ingestLoop(opts: {
  readonly source: EventSource;
  readonly deps: IngestDeps;
  readonly eventTime: EventTime;
  readonly dedupeFilter?: SyncedDedupeFilter;
  readonly metrics?: Metrics;
  readonly logger: Logger;
  readonly onCommitted: (outcome: BatchOutcome, unit: SourceUnit) => void;
}): UnitHandler {
  const inFlight = new Map<string, StoredKey>();
  // The keys of the last units stored (at most RECENTLY_STORED_KEYS): most copies follow their
  // original within seconds, and are then decided without a ledger lookup.
  const recentlyStored = createRecentKeys<StoredKey>(RECENTLY_STORED_KEYS);
  const deps: IngestDeps = { ...opts.deps, inFlight, recentlyStored };
  const newKeys = (u: Unit) => u.decided.newEvents.map((n) => n.candidate.key);

  return createOrderedUnits<SourceUnit, Unit>(
    {
      // 1. Decide, in memory (plus lookups of keys the filter cannot prove absent), after the
      //    filter has learned the keys other workers stored (when due, and after a rebalance).
      decide: async (unit): Promise<Unit> => {
        const end = opts.metrics?.batchDuration.startTimer();
        await opts.dedupeFilter?.catchUp();
        return { unit, end, decided: await decideBatch(unit.flatMap((b) => b.messages), deps) };
      },
      // 2. Store: every message durable in exactly one table; its keys are in the ledger now.
      store: async (u) => {
        u.outcome = await storeBatch(u.decided, deps);
        for (const k of newKeys(u)) {
          const key = inFlight.get(k);
          inFlight.delete(k);
          if (key) recentlyStored.add(k, key);
        }
        opts.dedupeFilter?.report();
      },
      // 3. Commit, in unit order; 4. advance each partition's event time.
      commit: async (u) => {
        await opts.source.commit(u.unit);
        for (const b of u.unit) opts.eventTime.observe(b.partition, u.outcome!.maxEventTimeByPartition.get(b.partition) ?? null);
        opts.metrics?.eventToCounterLatency.observe(Math.max(0, opts.deps.clock() - u.decided.now) / 1000);
        u.end?.();
        opts.onCommitted(u.outcome!, u.unit);
      },
    },
    {
      // Nothing after the failed unit was committed and nothing is still being written: its
      // messages (and everything after them) are read again, and their keys decided again.
      onFailure: (uncommitted, err) => {
        inFlight.clear();
        opts.logger.warn({ err, units: uncommitted.length }, 'an ingest unit failed; its messages are read again from the last committed offsets');
        opts.source.rewind(uncommitted);
      },
    },
  );
}
