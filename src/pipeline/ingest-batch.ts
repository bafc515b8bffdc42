import { classifyMessage, decideDedupe, storedKeyOf, type Candidate, type DedupeDecision, type Rejection, type SourceRef, type StoredKey } from '../domain/ingest-decision';
import type { DedupeFilter } from '../domain/dedupe-filter';
import { createLatenessDecider } from '../domain/lateness';
import { streamChanges, type StreamChange } from '../domain/stream-changes';
import type { MeterCatalog } from '../domain/meters';
import type { EventDecoder } from '../ports/event-decoder';
import type { LedgerStore, NewEvent } from '../ports/ledger';
import type { DeadLetterSink } from '../ports/dead-letters';
import type { SourceMessage } from '../ports/event-source';
import type { Metrics } from '../runtime/metrics';

/** A message as the event source delivered it (see ports/event-source.ts). */
export type RawMessage = SourceMessage;

/** Event-time bounds of a replay: [from, to) in ms; null is unbounded. */
export interface EventTimeRange {
  readonly from: number | null;
  readonly to: number | null;
}

export function inEventTimeRange(t: number, range: EventTimeRange | undefined): boolean {
  if (!range) return true;
  return (range.from === null || t >= range.from) && (range.to === null || t < range.to);
}

/** How one meter's events of a batch were decided. */
export interface MeterTally {
  accepted: number;
  duplicates: number;
  conflicts: number;
  redelivered: number;
  skipped: number;
}

/** Adds per-meter tallies into `into` (meters are few: a bounded map). */
export function addTallies(into: Record<string, MeterTally>, from: Readonly<Record<string, MeterTally>>): void {
  for (const [meter, m] of Object.entries(from)) {
    const t = (into[meter] ??= { accepted: 0, duplicates: 0, conflicts: 0, redelivered: 0, skipped: 0 });
    t.accepted += m.accepted;
    t.duplicates += m.duplicates;
    t.conflicts += m.conflicts;
    t.redelivered += m.redelivered;
    t.skipped += m.skipped;
  }
}

export interface IngestDeps {
  readonly decoder: EventDecoder;
  /** Read per batch, so a reloaded meters file applies from the next batch on. */
  readonly meters: () => MeterCatalog;
  readonly ledger: LedgerStore;
  /** Absent for a redrive: messages already in the DLQ are not dead-lettered again. */
  readonly deadLetters?: DeadLetterSink;
  readonly clock: () => number;
  readonly maxFutureSkewMs: number;
  readonly metrics?: Metrics;
  /** The worker's event-time watermark before this batch; absent or null: nothing is late. */
  readonly watermark?: () => number | null;
  /** Absent: every key is looked up in the ledger (replay, redrive). */
  readonly dedupeFilter?: DedupeFilter;
  /**
   * Keys decided new by batches whose writes are still in flight (pipelined units): a later
   * batch treats them as stored. The caller removes a batch's keys once it is durable, and
   * clears them all when a batch fails (its messages are re-read and decided again).
   */
  readonly inFlight?: Map<string, StoredKey>;
  /**
   * Keys this worker's own units stored lately (their writes landed), bounded by the caller. Like
   * `inFlight`, a copy of one is decided from it without a ledger lookup: the ledger holds that
   * very row (its first write, unless another worker stored the key in the race the README names).
   */
  readonly recentlyStored?: { get(key: string): StoredKey | undefined };
  /**
   * A replay's range: valid events outside it are skipped (read, written nowhere). Decided by
   * event time, never by Kafka timestamps, which the dev broker (and a producer) may get wrong.
   */
  readonly eventTimeRange?: EventTimeRange;
}

export interface BatchOutcome {
  readonly consumed: number;
  readonly accepted: number;
  readonly duplicates: number;
  readonly conflicts: number;
  readonly redelivered: number;
  readonly rejected: number;
  /** Valid events outside the replay's event-time range (written nowhere). */
  readonly skipped: number;
  /** Decisions per meter (meters are few: a bounded map). */
  readonly byMeter: Readonly<Record<string, MeterTally>>;
  /** What was dead-lettered (for redrive bookkeeping). */
  readonly rejections: readonly Rejection[];
  /** Source refs of messages that ended in the ledger (new or already there). */
  readonly stored: readonly SourceRef[];
  /** New events stored as too late for their (final) window: in late_events, not counted. */
  readonly tooLate: number;
  /** New events counted in a window that was already closed (within the allowed lateness). */
  readonly lateCounted: number;
  /** Highest event time among the valid events of each partition (for its watermark). */
  readonly maxEventTimeByPartition: ReadonlyMap<number, number>;
  /** The streams whose usage this batch changed (also in the durable change record). */
  readonly changes: readonly StreamChange[];
}

/** A batch decided in memory, ready to be written. */
export interface DecidedBatch {
  readonly consumed: number;
  readonly now: number;
  readonly rejections: readonly Rejection[];
  readonly skipped: readonly Candidate[];
  readonly decisions: readonly DedupeDecision[];
  readonly newEvents: readonly NewEvent[];
  readonly watermark: number | null;
  readonly maxEventTimeByPartition: ReadonlyMap<number, number>;
}

/**
 * Ingests one batch: decode → validate → enrich → dedupe → durable writes. When this resolves,
 * every message of the batch is durably in exactly one place (usage_events, duplicate_events,
 * or rejected_events + the DLQ topic), so the caller may — and only then may — commit offsets.
 * Throws (writing possibly part of the batch) only on infrastructure failure; reprocessing the
 * same batch afterwards is safe because every write below is idempotent under reprocessing.
 */
export async function ingestBatch(messages: readonly RawMessage[], deps: IngestDeps): Promise<BatchOutcome> {
  return storeBatch(await decideBatch(messages, deps), deps);
}

/**
 * Steps 1–3: everything decided in memory (plus the ledger lookups of keys the filter cannot
 * prove absent). Writes nothing; its new keys are in `deps.inFlight` (when given) from here
 * until the caller removes them once the batch is durable.
 */
export async function decideBatch(messages: readonly RawMessage[], deps: IngestDeps): Promise<DecidedBatch> {
  const now = deps.clock();
  const meters = deps.meters();

  // 1. Decode, and 2. validate and enrich (pure), one message at a time (the decoded record is
  //    garbage at once). Bad bytes become values; an unreachable schema registry throws
  //    (retriable). Every message becomes a candidate or a rejection.
  const candidates: Candidate[] = [];
  const rejections: Rejection[] = [];
  const skipped: Candidate[] = [];
  const backfilled = new Set<Candidate>();
  const maxEventTimeByPartition = new Map<number, number>();
  await deps.decoder.decodeEach(
    messages.map((m) => m.value),
    (decoded, i) => {
      const m = messages[i]!;
      const r = classifyMessage(m.ref, m.key, m.value, decoded, meters, { now, maxFutureSkewMs: deps.maxFutureSkewMs });
      if (!('candidate' in r)) {
        rejections.push(r.rejection);
        return;
      }
      const t = r.candidate.event.timestamp;
      // Every valid event moves its partition's event time, in range or not.
      const p = m.ref.partition;
      maxEventTimeByPartition.set(p, Math.max(t, maxEventTimeByPartition.get(p) ?? -Infinity));
      if (!inEventTimeRange(t, deps.eventTimeRange)) {
        skipped.push(r.candidate);
        return;
      }
      if (m.backfill) backfilled.add(r.candidate);
      candidates.push(r.candidate);
    },
  );

  // 3. Dedupe: what the ledger already holds, then first-write-wins within the batch (pure).
  //    Keys the filter proves absent skip the lookup; every "maybe" is confirmed in the ledger.
  const filter = deps.dedupeFilter;
  const maybe = filter ? candidates.filter((c) => !filter.certainlyAbsent(c.key, c.event.timestamp)) : candidates;
  //    A key this worker decided new itself — still being written (not in the ledger yet) or
  //    stored lately — is answered from memory; only the others are looked up.
  const own = new Map<string, StoredKey>();
  const unknown: Candidate[] = [];
  for (const c of maybe) {
    const mine = deps.inFlight?.get(c.key) ?? deps.recentlyStored?.get(c.key);
    if (mine) own.set(c.key, mine);
    else unknown.push(c);
  }
  const stored = await deps.ledger.lookup(unknown);
  for (const [k, mine] of own) stored.set(k, mine);
  deps.metrics?.dedupeOwnKeys.inc(own.size);
  const decisions = decideDedupe(candidates, stored);
  // Recorded at decision time, before the writes: a later unit (even one decided while this
  // one's writes are in flight) sees these keys as "maybe" and finds them in flight or stored
  // lately. A key recorded for a unit that then fails to store only costs a lookup.
  if (filter) {
    for (const d of decisions) if (d.kind === 'new') filter.record(d.candidate.key, now);
    deps.metrics?.dedupeFilterChecked.inc(candidates.length);
    deps.metrics?.dedupeFilterMaybe.inc(maybe.length);
  }
  if (deps.inFlight) {
    for (const d of decisions) if (d.kind === 'new') deps.inFlight.set(d.candidate.key, storedKeyOf(d.candidate));
  }

  // 3b. Lateness, decided once per new event against the watermark from before this batch,
  //     and stored with it (rule 6): a rebuild from the ledger reproduces the same totals.
  const watermark = deps.watermark?.() ?? null;
  const lateness = createLatenessDecider(watermark);
  const newEvents: NewEvent[] = [];
  for (const d of decisions) {
    if (d.kind !== 'new') continue;
    const c = d.candidate;
    newEvents.push({ candidate: c, lateness: lateness(c.event.timestamp, c.meter, { backfill: backfilled.has(c) }) });
  }

  return { consumed: messages.length, now, rejections, skipped, decisions, newEvents, watermark, maxEventTimeByPartition };
}

/**
 * Step 4: the durable writes of a decided batch. Nothing is read back: every total is an
 * aggregate of the ledger that ClickHouse keeps with the rows themselves (rule 5).
 */
export async function storeBatch(decided: DecidedBatch, deps: IngestDeps): Promise<BatchOutcome> {
  const { now, rejections, skipped, decisions, newEvents, watermark, maxEventTimeByPartition } = decided;
  // 4. Durable writes. Dead letters first: the DLQ topic is where operators look, and a
  //    failure after it only re-sends dead letters (at-least-once there, exactly-once in
  //    rejected_events, which is keyed by source offset).
  if (deps.deadLetters) await deps.deadLetters.send(rejections);
  const endInsert = deps.metrics?.insertDuration.startTimer();
  // The five tables are written concurrently: each write is idempotent under reprocessing (the
  // change record only tells the pusher where to look), and the batch counts as stored only
  // once all have landed. Every write is awaited, failed or not,
  // so nothing of this batch is still being written when the caller lets it be re-read.
  // The ledger insert is one INSERT, hence one atomic part (with its by_window projection):
  // a crash leaves all of it or none.
  const changes = streamChanges(decisions);
  // The ledger's INSERT records the streams of its rows in the change record itself, stamped with
  // their ingested_at: taken now, just before it (the pusher of another worker reads changes from
  // a little before its previous read, allowing for an INSERT's duration). Redelivered events are
  // not written again, so their streams are recorded here: if a crash or a failed write came
  // between the ledger's part and the change record's, the unit is read again and repairs it.
  const storedAt = deps.clock();
  const writes = await Promise.allSettled([
    deps.ledger.insertRejections(rejections, now),
    deps.ledger.insertDuplicates(decisions, now),
    deps.ledger.insertLate(newEvents, watermark, now),
    deps.ledger.insertNew(newEvents, storedAt),
    deps.ledger.recordChanges(streamChanges(decisions.filter((d) => d.kind === 'redelivered')), storedAt),
  ]);
  for (const w of writes) if (w.status === 'rejected') throw w.reason;
  endInsert?.();

  let accepted = 0;
  let duplicates = 0;
  let conflicts = 0;
  let redelivered = 0;
  const storedRefs: SourceRef[] = [];
  const byMeter: Record<string, MeterTally> = {};
  const tally = (meter: string) => (byMeter[meter] ??= { accepted: 0, duplicates: 0, conflicts: 0, redelivered: 0, skipped: 0 });
  for (const c of skipped) tally(c.event.meter).skipped += 1;
  for (const d of decisions) {
    const meter = d.candidate.event.meter;
    const t = tally(meter);
    switch (d.kind) {
      case 'new':
        t.accepted += 1;
        accepted += 1;
        storedRefs.push(d.candidate.ref);
        break;
      case 'duplicate':
        t.duplicates += 1;
        duplicates += 1;
        break;
      case 'conflict':
        t.conflicts += 1;
        conflicts += 1;
        break;
      case 'redelivered':
        t.redelivered += 1;
        redelivered += 1;
        storedRefs.push(d.candidate.ref);
        break;
      default: {
        const never: never = d;
        throw new Error(`unhandled decision ${JSON.stringify(never)}`);
      }
    }
  }
  let tooLate = 0;
  let lateCounted = 0;
  const lateByMeter = new Map<string, { too_late: number; counted: number }>();
  for (const n of newEvents) {
    const outcome = n.lateness.disposition === 'too_late' ? 'too_late' : n.lateness.late ? 'counted' : null;
    if (!outcome) continue;
    if (outcome === 'too_late') tooLate += 1;
    else lateCounted += 1;
    const meter = n.candidate.event.meter;
    if (!lateByMeter.has(meter)) lateByMeter.set(meter, { too_late: 0, counted: 0 });
    lateByMeter.get(meter)![outcome] += 1;
  }
  if (deps.metrics) countDecisions(deps.metrics, decided.consumed, byMeter, redelivered, rejections, lateByMeter);
  return {
    consumed: decided.consumed,
    accepted,
    duplicates,
    conflicts,
    redelivered,
    rejected: rejections.length,
    skipped: skipped.length,
    byMeter,
    rejections,
    stored: storedRefs,
    tooLate,
    lateCounted,
    maxEventTimeByPartition,
    changes,
  };
}

/**
 * The batch's decisions into the event counters, once per label set (a labelled increment costs
 * a label lookup: per batch, not per event). A series appears only once something is counted.
 */
function countDecisions(
  metrics: Metrics,
  consumed: number,
  byMeter: Readonly<Record<string, MeterTally>>,
  redelivered: number,
  rejections: readonly Rejection[],
  lateByMeter: ReadonlyMap<string, { too_late: number; counted: number }>,
): void {
  metrics.eventsConsumed.inc(consumed);
  for (const [meter, t] of Object.entries(byMeter)) {
    if (t.accepted > 0) metrics.eventsAccepted.inc({ meter }, t.accepted);
    if (t.duplicates > 0) metrics.eventsDuplicate.inc({ meter }, t.duplicates);
    if (t.conflicts > 0) metrics.eventsConflicting.inc({ meter }, t.conflicts);
  }
  if (redelivered > 0) metrics.eventsRedelivered.inc(redelivered);
  const rejectedByReason = new Map<string, number>();
  for (const r of rejections) rejectedByReason.set(r.code, (rejectedByReason.get(r.code) ?? 0) + 1);
  for (const [reason, n] of rejectedByReason) metrics.eventsRejected.inc({ reason }, n);
  for (const [meter, late] of lateByMeter) {
    for (const outcome of ['too_late', 'counted'] as const) if (late[outcome] > 0) metrics.eventsLate.inc({ meter, outcome }, late[outcome]);
  }
}
