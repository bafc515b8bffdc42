import type { ClickHouseClient } from '@clickhouse/client';
import { dedupeKey, type Candidate, type DedupeDecision, type Rejection, type StoredKey } from '../../domain/ingest-decision';
import type { LatenessDecision } from '../../domain/lateness';
import { assertIdentifier } from './migrations';
import { dateTime64, dateTime64Micro } from './format';
import { rejectedEventsRow } from './rejected-store';

/**
 * The ledger port: the dedupe lookup and the three writes of an ingest batch. Each write is
 * one INSERT (one atomic part) and idempotent under reprocessing:
 *  - usage_events: only decisions of kind 'new' are written, and a reprocessed message is
 *    recognised as 'redelivered' by its stored (topic, partition, offset);
 *  - duplicate_events / rejected_events: keyed by the message's own offset.
 */
/** A first copy, with its lateness decision (recorded with it, never revisited). */
export interface NewEvent {
  readonly candidate: Candidate;
  readonly lateness: LatenessDecision;
}

export interface LedgerStore {
  lookup(candidates: readonly Candidate[]): Promise<Map<string, StoredKey>>;
  insertNew(events: readonly NewEvent[], ingestedAt: number): Promise<void>;
  /** Too-late events, explained; `watermark` is the one they were judged against. */
  insertLate(events: readonly NewEvent[], watermark: number | null, ingestedAt: number): Promise<void>;
  insertDuplicates(decisions: readonly DedupeDecision[], detectedAt: number): Promise<void>;
  insertRejections(rejections: readonly Rejection[], rejectedAt: number): Promise<void>;
}

/** Columns usage_events and late_events share: the event itself and where it was read. */
function eventColumns(c: Candidate, ingestedAt: number) {
  return {
    tenant: c.event.tenant,
    id: c.event.id,
    customer: c.event.customer,
    meter: c.event.meter,
    value: c.event.value,
    event_time: dateTime64(c.event.timestamp),
    topic: c.ref.topic,
    partition: c.ref.partition,
    offset: c.ref.offset,
    ingested_at: dateTime64Micro(ingestedAt),
  };
}

export function createLedgerStore(client: ClickHouseClient, database: string, opts: { dedupeWindowMs: number }): LedgerStore {
  assertIdentifier(database);
  const t = (name: string) => `${database}.${name}`;
  return {
    async lookup(candidates) {
      const found = new Map<string, StoredKey>();
      if (candidates.length === 0) return found;
      const wanted = new Set(candidates.map((c) => dedupeKey(c.event.tenant, c.event.id)));
      let minTime = Infinity;
      let maxTime = -Infinity;
      for (const c of candidates) {
        minTime = Math.min(minTime, c.event.timestamp);
        maxTime = Math.max(maxTime, c.event.timestamp);
      }
      // Copies are recognised when their event times lie within the dedupe window of each
      // other; bounding event_time lets ClickHouse skip older monthly partitions entirely.
      const rs = await client.query({
        query: `
          SELECT tenant, id, body_hash, topic, partition, toString(offset) AS offset
          FROM ${t('usage_events')}
          WHERE tenant IN {tenants:Array(String)} AND id IN {ids:Array(String)}
            AND event_time >= fromUnixTimestamp64Milli({from:Int64}) AND event_time <= fromUnixTimestamp64Milli({to:Int64})
          ORDER BY ingested_at, partition, offset
          SETTINGS optimize_use_projections = 0`,
        query_params: {
          tenants: [...new Set(candidates.map((c) => c.event.tenant))],
          ids: [...new Set(candidates.map((c) => c.event.id))],
          from: minTime - opts.dedupeWindowMs,
          to: maxTime + opts.dedupeWindowMs,
        },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ tenant: string; id: string; body_hash: string; topic: string; partition: number; offset: string }>();
      for (const r of rows) {
        const k = dedupeKey(r.tenant, r.id);
        // The IN-lists match cross pairs too (tenant A, id of tenant B): keep exact keys only.
        // Rows come oldest first, so the first one kept is the first write.
        if (!wanted.has(k) || found.has(k)) continue;
        found.set(k, { tenant: r.tenant, id: r.id, bodyHash: r.body_hash, topic: r.topic, partition: Number(r.partition), offset: r.offset });
      }
      return found;
    },

    async insertNew(events, ingestedAt) {
      const values = events.map(({ candidate: c, lateness }) => ({
          ...eventColumns(c, ingestedAt),
          properties: c.event.properties,
          source: c.event.source,
          body_hash: c.bodyHash,
          meter_aggregation: c.meter.aggregation,
          meter_window: c.meter.window,
          meter_allowed_lateness_ms: c.meter.allowedLatenessMs,
          meter_definition_hash: c.meter.definitionHash,
          meter_unique_property: c.meter.uniqueProperty ?? '',
          window_start: dateTime64(lateness.window.start),
          disposition: lateness.disposition,
        }));
      if (values.length > 0) await client.insert({ table: t('usage_events'), values, format: 'JSONEachRow' });
    },

    async insertLate(events, watermark, ingestedAt) {
      const values = events.flatMap(({ candidate: c, lateness }) =>
        lateness.disposition === 'too_late'
          ? [
              {
                ...eventColumns(c, ingestedAt),
                window_start: dateTime64(lateness.window.start),
                window_end: dateTime64(lateness.window.end),
                watermark: dateTime64(watermark ?? 0),
                allowed_lateness_ms: c.meter.allowedLatenessMs,
                reason: lateness.reason,
              },
            ]
          : [],
      );
      if (values.length > 0) await client.insert({ table: t('late_events'), values, format: 'JSONEachRow' });
    },

    async insertDuplicates(decisions, detectedAt) {
      const values = decisions.flatMap((d) =>
        d.kind === 'duplicate' || d.kind === 'conflict'
          ? [
              {
                kind: d.kind,
                tenant: d.candidate.event.tenant,
                id: d.candidate.event.id,
                body_hash: d.candidate.bodyHash,
                original_body_hash: d.original.bodyHash,
                original_topic: d.original.topic,
                original_partition: d.original.partition,
                original_offset: d.original.offset,
                event: d.kind === 'conflict' ? JSON.stringify(d.candidate.event) : '',
                topic: d.candidate.ref.topic,
                partition: d.candidate.ref.partition,
                offset: d.candidate.ref.offset,
                detected_at: dateTime64Micro(detectedAt),
              },
            ]
          : [],
      );
      if (values.length > 0) await client.insert({ table: t('duplicate_events'), values, format: 'JSONEachRow' });
    },

    async insertRejections(rejections, rejectedAt) {
      const values = rejections.map((r) => rejectedEventsRow({ ...r, reasonCode: r.code }, 'rejected', rejectedAt, 0));
      if (values.length > 0) await client.insert({ table: t('rejected_events'), values, format: 'JSONEachRow' });
    },
  };
}
