import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerStore } from '../adapters/clickhouse/ledger-store';
import { assertIdentifier } from '../adapters/clickhouse/migrations';
import { createWatermarkStore } from '../adapters/clickhouse/watermark-store';
import { streamKey } from '../domain/keys';
import type { StreamChange } from '../domain/stream-changes';

export interface RebuildSummary {
  /** Windows with counted events whose start lies in the range. */
  windows: number;
  /** Streams announced to the pusher as changed. */
  streams: number;
}

/**
 * Counters are aggregates of the ledger computed where they are read (the usage_counters view),
 * so there is nothing to recompute: a rebuild announces every stream with windows starting in
 * [from, to) in the change record, and the pusher re-plans them from the ledger and sends only
 * the differences it finds (after a ledger repair, a replay, a meter-definition change).
 */
export async function rebuildCounters(ch: ClickHouseClient, database: string, opts: { from: number; to: number; now: number }): Promise<RebuildSummary> {
  assertIdentifier(database);
  const rs = await ch.query({
    query: `
      SELECT tenant, customer, meter, count() AS windows,
             toString(toUnixTimestamp64Milli(min(window_start))) AS oldest, toString(toUnixTimestamp64Milli(max(window_start))) AS newest
      FROM (
        SELECT DISTINCT tenant, customer, meter, window_start
        FROM ${database}.usage_events
        WHERE disposition = 'counted'
          AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64}))
      GROUP BY tenant, customer, meter
      ORDER BY tenant, customer, meter`,
    query_params: { from: opts.from, to: opts.to },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ tenant: string; customer: string; meter: string; windows: string | number; oldest: string; newest: string }>();
  const changes: StreamChange[] = rows.map((r) => ({ key: streamKey(r), tenant: r.tenant, customer: r.customer, meter: r.meter, oldestWindowStart: Number(r.oldest), newestWindowStart: Number(r.newest) }));
  await createLedgerStore(ch, database, { dedupeWindowMs: 0 }).recordChanges(changes, opts.now);
  return { windows: rows.reduce((n, r) => n + Number(r.windows), 0), streams: changes.length };
}

/** The worker watermark a stopped system had (window states are computed from it), or null. */
export async function persistedWatermark(ch: ClickHouseClient, database: string): Promise<number | null> {
  return createWatermarkStore(ch, database).loadWatermark();
}
