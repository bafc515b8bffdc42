import type { Candidate, DedupeDecision, Rejection, StoredKey } from '../domain/ingest-decision';
import type { LatenessDecision } from '../domain/lateness';
import type { StreamChange } from '../domain/stream-changes';

/** A first copy, with its lateness decision (recorded with it, never revisited). */
export interface NewEvent {
  readonly candidate: Candidate;
  readonly lateness: LatenessDecision;
}

/**
 * The ledger: the dedupe lookup and the writes of an ingest unit. Each write is one INSERT (one
 * atomic part) and idempotent under reprocessing:
 *  - usage_events: only decisions of kind 'new' are written, and a reprocessed message is
 *    recognised as 'redelivered' by its stored (topic, partition, offset);
 *  - duplicate_events / rejected_events: keyed by the message's own offset;
 *  - the change record only tells the pusher where to look (a row too many costs a look).
 */
export interface LedgerStore {
  lookup(candidates: readonly Candidate[]): Promise<Map<string, StoredKey>>;
  /**
   * The first copies, stamped `ingestedAt` (taken just before the INSERT). The same INSERT records
   * their streams in the change record, stamped alike (ClickHouse's stream_changes_from_ledger view).
   */
  insertNew(events: readonly NewEvent[], ingestedAt: number): Promise<void>;
  /** Too-late events, explained; `watermark` is the one they were judged against. */
  insertLate(events: readonly NewEvent[], watermark: number | null, ingestedAt: number): Promise<void>;
  insertDuplicates(decisions: readonly DedupeDecision[], detectedAt: number): Promise<void>;
  insertRejections(rejections: readonly Rejection[], rejectedAt: number): Promise<void>;
  /**
   * Streams changed by rows not inserted now, for the pusher (stamped just before the INSERT):
   * a unit's redelivered events, a rebuild's announcement.
   */
  recordChanges(changes: readonly StreamChange[], changedAt: number): Promise<void>;
}
