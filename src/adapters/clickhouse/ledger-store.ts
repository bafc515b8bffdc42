import type { ClickHouseClient } from '@clickhouse/client';
import { dedupeKey, type StoredKey } from '../../domain/ingest-decision';
import type { LedgerStore } from '../../ports/ledger';
import { assertIdentifier } from './migrations';
import {
  DUPLICATE_EVENTS, encodeRows, LATE_EVENTS, REJECTED_EVENTS, STREAM_CHANGES, USAGE_EVENTS, type CopyDecision, type TooLateEvent, type TsvTable,
} from './ledger-rows';
import { insertTsv } from './tsv-insert';

export type { LedgerStore, NewEvent } from '../../ports/ledger';

/**
 * `ingestedBy` names the worker writing (stored with each new row, so its dedupe filter can tell
 * its own keys from everyone else's); other writers (redrive, replay, tests) leave it ''.
 */
export function createLedgerStore(client: ClickHouseClient, database: string, opts: { dedupeWindowMs: number; ingestedBy?: string }): LedgerStore {
  assertIdentifier(database);
  const t = (name: string) => `${database}.${name}`;
  const insertRows = async <Row>(table: TsvTable<Row>, rows: readonly Row[]) => {
    if (rows.length > 0) await insertTsv(client, t(table.table), table.columns, encodeRows(table, rows));
  };
  return {
    async lookup(candidates) {
      const found = new Map<string, StoredKey>();
      if (candidates.length === 0) return found;
      const wanted = new Set(candidates.map((c) => c.key));
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

    // Each table's rows are encoded once as TabSeparated bytes and inserted as they are (one
    // INSERT each: one atomic part, with the usage_events projections written in it). The
    // ledger's INSERT also fills the change record (schema/window-tables.ts, its view).
    async insertNew(events, ingestedAt) {
      await insertRows(USAGE_EVENTS, events.map((event) => ({ event, ingestedAt, ingestedBy: opts.ingestedBy ?? '' })));
    },

    async insertLate(events, watermark, ingestedAt) {
      const tooLate = events.filter((e): e is TooLateEvent => e.lateness.disposition === 'too_late');
      await insertRows(LATE_EVENTS, tooLate.map((event) => ({ event, watermark, ingestedAt })));
    },

    async insertDuplicates(decisions, detectedAt) {
      const copies = decisions.filter((d): d is CopyDecision => d.kind === 'duplicate' || d.kind === 'conflict');
      await insertRows(DUPLICATE_EVENTS, copies.map((decision) => ({ decision, detectedAt })));
    },

    async insertRejections(rejections, rejectedAt) {
      await insertRows(
        REJECTED_EVENTS,
        rejections.map((r) => ({ ...r, reasonCode: r.code, status: 'rejected' as const, at: rejectedAt, version: 0 })),
      );
    },

    async recordChanges(changes, changedAt) {
      await insertRows(STREAM_CHANGES, changes.map((change) => ({ change, changedAt, writtenBy: opts.ingestedBy ?? '' })));
    },
  };
}
