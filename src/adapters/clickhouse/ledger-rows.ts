import type { DedupeDecision, SourceRef } from '../../domain/ingest-decision';
import type { LatenessDecision } from '../../domain/lateness';
import type { MeterDefinition } from '../../domain/meters';
import type { StreamChange } from '../../domain/stream-changes';
import type { NewEvent } from '../../ports/ledger';
import { tsvDateTime64, tsvDateTime64Micro, tsvNullableString, tsvRows, tsvString, tsvStringMap } from './tsv';

/**
 * One TabSeparated encoder per table the ingest writes: the column list the INSERT names and
 * each row's text — its fields in that order, joined by tabs. A row is encoded once, here, and
 * handed to ClickHouse as bytes. Integers, decimals (canonical text from domain/decimal) and
 * enum-like names need no escaping; every free-text value goes through tsvString.
 */
export interface TsvTable<Row> {
  readonly table: string;
  readonly columns: readonly string[];
  /** The row's fields, escaped, joined by tabs (no newline). */
  readonly row: (row: Row) => string;
}

/** Rows → one TabSeparated body for `table` (empty when there are no rows). */
export function encodeRows<Row>(t: TsvTable<Row>, rows: readonly Row[]): Buffer {
  return tsvRows(rows, t.row);
}

const tabbed = (fields: readonly string[]): string => fields.join('\t');

/**
 * The meter's columns of a usage_events row (aggregation … unique property), formatted once per
 * meter definition: every event of a meter repeats them.
 */
const meterColumns = new WeakMap<MeterDefinition, string>();
function meterColumnsOf(m: MeterDefinition): string {
  let text = meterColumns.get(m);
  if (text === undefined) {
    text = tabbed([m.aggregation, m.window, String(m.allowedLatenessMs), tsvString(m.definitionHash), tsvString(m.uniqueProperty ?? '')]);
    meterColumns.set(m, text);
  }
  return text;
}

export type { NewEvent };

export const USAGE_EVENTS: TsvTable<{ readonly event: NewEvent; readonly ingestedAt: number; readonly ingestedBy: string }> = {
  table: 'usage_events',
  columns: [
    'tenant', 'id', 'customer', 'meter', 'value', 'event_time', 'properties', 'source', 'body_hash',
    'meter_aggregation', 'meter_window', 'meter_allowed_lateness_ms', 'meter_definition_hash', 'meter_unique_property',
    'window_start', 'disposition', 'topic', 'partition', 'offset', 'ingested_at', 'ingested_by',
  ],
  // One template, not an array joined: this runs once per stored event. The last two columns
  // are the same for a whole insert (tsvDateTime64Micro repeats its last answer).
  row: ({ event: { candidate: c, lateness }, ingestedAt, ingestedBy }) =>
    `${tsvString(c.event.tenant)}\t${tsvString(c.event.id)}\t${tsvString(c.event.customer)}\t${tsvString(c.event.meter)}\t` +
    `${c.event.value}\t${tsvDateTime64(c.event.timestamp)}\t${tsvStringMap(c.event.properties)}\t${tsvNullableString(c.event.source)}\t` +
    `${c.bodyHash}\t${meterColumnsOf(c.meter)}\t${tsvDateTime64(lateness.window.start)}\t${lateness.disposition}\t` +
    `${tsvString(c.ref.topic)}\t${c.ref.partition}\t${c.ref.offset}\t${tsvDateTime64Micro(ingestedAt)}\t${tsvString(ingestedBy)}`,
};

/** A first copy stored as too late for its (final) window: kept and explained, never counted. */
export type TooLateEvent = NewEvent & { readonly lateness: Extract<LatenessDecision, { disposition: 'too_late' }> };

export const LATE_EVENTS: TsvTable<{ readonly event: TooLateEvent; readonly watermark: number | null; readonly ingestedAt: number }> = {
  table: 'late_events',
  columns: [
    'tenant', 'id', 'customer', 'meter', 'value', 'event_time', 'window_start', 'window_end', 'watermark',
    'allowed_lateness_ms', 'reason', 'topic', 'partition', 'offset', 'ingested_at',
  ],
  row: ({ event: { candidate: c, lateness }, watermark, ingestedAt }) =>
    tabbed([
      tsvString(c.event.tenant),
      tsvString(c.event.id),
      tsvString(c.event.customer),
      tsvString(c.event.meter),
      c.event.value,
      tsvDateTime64(c.event.timestamp),
      tsvDateTime64(lateness.window.start),
      tsvDateTime64(lateness.window.end),
      tsvDateTime64(watermark ?? 0),
      String(c.meter.allowedLatenessMs),
      tsvString(lateness.reason),
      tsvString(c.ref.topic),
      String(c.ref.partition),
      c.ref.offset,
      tsvDateTime64Micro(ingestedAt),
    ]),
};

/** A copy that was not stored: a plain duplicate or a conflict. */
export type CopyDecision = Extract<DedupeDecision, { kind: 'duplicate' | 'conflict' }>;

export const DUPLICATE_EVENTS: TsvTable<{ readonly decision: CopyDecision; readonly detectedAt: number }> = {
  table: 'duplicate_events',
  columns: [
    'kind', 'tenant', 'id', 'body_hash', 'original_body_hash', 'original_topic', 'original_partition', 'original_offset',
    'event', 'topic', 'partition', 'offset', 'detected_at',
  ],
  row: ({ decision: d, detectedAt }) =>
    tabbed([
      d.kind,
      tsvString(d.candidate.event.tenant),
      tsvString(d.candidate.event.id),
      d.candidate.bodyHash,
      tsvString(d.original.bodyHash),
      tsvString(d.original.topic),
      String(d.original.partition),
      d.original.offset,
      // A conflict keeps the rejected copy in full, so it can be explained.
      d.kind === 'conflict' ? tsvString(JSON.stringify(d.candidate.event)) : '',
      tsvString(d.candidate.ref.topic),
      String(d.candidate.ref.partition),
      d.candidate.ref.offset,
      tsvDateTime64Micro(detectedAt),
    ]),
};

/** One version of a dead letter: the live consumer writes version 0, a redrive a later one. */
export interface RejectedVersion {
  readonly reasonCode: string;
  readonly reason: string;
  readonly raw: Buffer | null;
  readonly key: Buffer | null;
  readonly tenant: string | null;
  readonly eventId: string | null;
  readonly ref: SourceRef;
  readonly status: 'rejected' | 'redriven';
  readonly at: number;
  readonly version: number;
}

export const REJECTED_EVENTS: TsvTable<RejectedVersion> = {
  table: 'rejected_events',
  columns: ['reason_code', 'reason', 'raw_payload', 'message_key', 'tenant', 'event_id', 'topic', 'partition', 'offset', 'rejected_at', 'status', 'version'],
  row: (r) =>
    tabbed([
      tsvString(r.reasonCode),
      tsvString(r.reason),
      r.raw ? r.raw.toString('base64') : '',
      r.key ? tsvString(r.key.toString('utf8')) : '\\N',
      tsvNullableString(r.tenant),
      tsvNullableString(r.eventId),
      tsvString(r.ref.topic),
      String(r.ref.partition),
      r.ref.offset,
      tsvDateTime64Micro(r.at),
      r.status,
      String(r.version),
    ]),
};

/**
 * The pusher's change record, one row per stream, as a writer records it itself: a unit's
 * redelivered events, a rebuild's announcement. The ledger's INSERT records its own rows' streams
 * (the stream_changes_from_ledger view, schema/window-tables.ts).
 */
export const STREAM_CHANGES: TsvTable<{ readonly change: StreamChange; readonly changedAt: number; readonly writtenBy: string }> = {
  table: 'stream_changes',
  columns: ['tenant', 'customer', 'meter', 'oldest_window_start', 'newest_window_start', 'changed_at', 'written_by'],
  row: ({ change: c, changedAt, writtenBy }) =>
    tabbed([
      tsvString(c.tenant),
      tsvString(c.customer),
      tsvString(c.meter),
      tsvDateTime64(c.oldestWindowStart),
      tsvDateTime64(c.newestWindowStart),
      tsvDateTime64Micro(changedAt),
      tsvString(writtenBy),
    ]),
};
