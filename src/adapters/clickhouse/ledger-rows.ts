import type { DedupeDecision, SourceRef } from '../../domain/ingest-decision';
import type { LatenessDecision } from '../../domain/lateness';
import type { StreamChange } from '../../domain/stream-changes';
import type { NewEvent } from '../../ports/ledger';
import { tsvDateTime64, tsvDateTime64Micro, tsvNullableString, tsvRows, tsvString, tsvStringMap } from './tsv';

/**
 * One TabSeparated encoder per table the ingest writes: the column list the INSERT names and
 * each row's fields in that order. A row is encoded once, here, and handed to ClickHouse as bytes.
 * Integers, decimals (canonical text from domain/decimal) and enum-like names need no escaping;
 * every free-text value goes through tsvString.
 */
export interface TsvTable<Row> {
  readonly table: string;
  readonly columns: readonly string[];
  readonly fields: (row: Row) => string[];
}

/** Rows → one TabSeparated body for `table` (empty when there are no rows). */
export function encodeRows<Row>(t: TsvTable<Row>, rows: readonly Row[]): Buffer {
  return tsvRows(rows.map(t.fields));
}

export type { NewEvent };

export const USAGE_EVENTS: TsvTable<{ readonly event: NewEvent; readonly ingestedAt: number; readonly ingestedBy: string }> = {
  table: 'usage_events',
  columns: [
    'tenant', 'id', 'customer', 'meter', 'value', 'event_time', 'properties', 'source', 'body_hash',
    'meter_aggregation', 'meter_window', 'meter_allowed_lateness_ms', 'meter_definition_hash', 'meter_unique_property',
    'window_start', 'disposition', 'topic', 'partition', 'offset', 'ingested_at', 'ingested_by',
  ],
  fields: ({ event: { candidate: c, lateness }, ingestedAt, ingestedBy }) => [
    tsvString(c.event.tenant),
    tsvString(c.event.id),
    tsvString(c.event.customer),
    tsvString(c.event.meter),
    c.event.value,
    tsvDateTime64(c.event.timestamp),
    tsvStringMap(c.event.properties),
    tsvNullableString(c.event.source),
    c.bodyHash,
    c.meter.aggregation,
    c.meter.window,
    String(c.meter.allowedLatenessMs),
    tsvString(c.meter.definitionHash),
    tsvString(c.meter.uniqueProperty ?? ''),
    tsvDateTime64(lateness.window.start),
    lateness.disposition,
    tsvString(c.ref.topic),
    String(c.ref.partition),
    c.ref.offset,
    tsvDateTime64Micro(ingestedAt),
    tsvString(ingestedBy),
  ],
};

/** A first copy stored as too late for its (final) window: kept and explained, never counted. */
export type TooLateEvent = NewEvent & { readonly lateness: Extract<LatenessDecision, { disposition: 'too_late' }> };

export const LATE_EVENTS: TsvTable<{ readonly event: TooLateEvent; readonly watermark: number | null; readonly ingestedAt: number }> = {
  table: 'late_events',
  columns: [
    'tenant', 'id', 'customer', 'meter', 'value', 'event_time', 'window_start', 'window_end', 'watermark',
    'allowed_lateness_ms', 'reason', 'topic', 'partition', 'offset', 'ingested_at',
  ],
  fields: ({ event: { candidate: c, lateness }, watermark, ingestedAt }) => [
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
  ],
};

/** A copy that was not stored: a plain duplicate or a conflict. */
export type CopyDecision = Extract<DedupeDecision, { kind: 'duplicate' | 'conflict' }>;

export const DUPLICATE_EVENTS: TsvTable<{ readonly decision: CopyDecision; readonly detectedAt: number }> = {
  table: 'duplicate_events',
  columns: [
    'kind', 'tenant', 'id', 'body_hash', 'original_body_hash', 'original_topic', 'original_partition', 'original_offset',
    'event', 'topic', 'partition', 'offset', 'detected_at',
  ],
  fields: ({ decision: d, detectedAt }) => [
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
  ],
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
  fields: (r) => [
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
  ],
};

/** The pusher's change record: one row per stream an ingest unit changed. */
export const STREAM_CHANGES: TsvTable<{ readonly change: StreamChange; readonly changedAt: number }> = {
  table: 'stream_changes',
  columns: ['tenant', 'customer', 'meter', 'oldest_window_start', 'newest_window_start', 'changed_at'],
  fields: ({ change: c, changedAt }) => [
    tsvString(c.tenant),
    tsvString(c.customer),
    tsvString(c.meter),
    tsvDateTime64(c.oldestWindowStart),
    tsvDateTime64(c.newestWindowStart),
    tsvDateTime64Micro(changedAt),
  ],
};
