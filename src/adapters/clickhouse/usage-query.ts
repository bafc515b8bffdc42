import type { ClickHouseClient } from '@clickhouse/client';
import { aggregateValue } from '../../domain/counters';
import { counterState, type CounterState } from '../../domain/lateness';
import { isCoarserOrEqual, monthOf, WINDOW_MS, type QueryWindow } from '../../domain/windows';
import type { WindowSize } from '../../domain/meters';
import { MeterlineError } from '../../runtime/errors';
import { assertIdentifier } from './migrations';
import { readWatermark } from './watermark-store';
import { SELECT_WINDOW_AGGREGATES } from './window-aggregates';

export interface UsageQuery {
  readonly tenant: string;
  readonly customer?: string;
  readonly meter?: string;
  /** Windows whose start lies in [from, to). */
  readonly from: number;
  readonly to: number;
  /** Absent: each meter's own window. */
  readonly window?: QueryWindow;
}

export interface UsageRow {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly window_start: string;
  readonly window_end: string;
  /** Exact decimal text. */
  readonly value: string;
  readonly events: number;
  readonly state: CounterState;
}

// Whitelisted SQL for each window: user input never reaches the SQL text.
const BUCKET: Readonly<Record<QueryWindow, string>> = {
  minute: "toDateTime64(toStartOfInterval(window_start, INTERVAL 1 MINUTE), 3, 'UTC')",
  hour: "toDateTime64(toStartOfInterval(window_start, INTERVAL 1 HOUR), 3, 'UTC')",
  day: "toDateTime64(toStartOfInterval(window_start, INTERVAL 1 DAY), 3, 'UTC')",
  month: "toDateTime64(toStartOfMonth(window_start), 3, 'UTC')",
};
/**
 * Usage per (customer, meter, window), values recomputed from the deduplicated ledger (so any
 * window at least as coarse as the meter's own is exact, unique counts included) and the state
 * computed from the persisted watermark: that of the bucket's latest window with usage, the
 * least settled of its windows.
 */
export async function queryUsage(client: ClickHouseClient, database: string, q: UsageQuery): Promise<UsageRow[]> {
  assertIdentifier(database);
  const bucket = q.window ? BUCKET[q.window] : 'window_start';
  const params = { tenant: q.tenant, customer: q.customer ?? '', meter: q.meter ?? '', from: q.from, to: q.to };
  const filter = `tenant = {tenant:String} AND ({customer:String} = '' OR customer = {customer:String})
        AND ({meter:String} = '' OR meter = {meter:String})
        AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64})`;
  // Both served by a per-window projection; the buckets' latest windows (for their state) from a
  // second query that groups by window first. (The projections now keep LATEST_WINDOW too, so
  // one statement could serve both, as in span-reads.ts; not changed: off the hot path.)
  const [valuesRs, latestRs, watermark] = await Promise.all([
    client.query({
      query: `
      SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(${bucket})) AS bs, ${SELECT_WINDOW_AGGREGATES}
      FROM ${database}.usage_events
      WHERE disposition = 'counted' AND ${filter}
      GROUP BY tenant, customer, meter, bs
      ORDER BY customer, meter, toInt64(bs)`,
      query_params: params,
      format: 'JSONEachRow',
    }),
    client.query({
      query: `
      SELECT customer, meter, toString(toUnixTimestamp64Milli(${bucket})) AS bs, toString(toUnixTimestamp64Milli(max(window_start))) AS latest_ws
      FROM (
        SELECT tenant, customer, meter, window_start, count() AS events
        FROM ${database}.usage_events
        WHERE disposition = 'counted' AND ${filter}
        GROUP BY tenant, customer, meter, window_start)
      GROUP BY customer, meter, bs`,
      query_params: params,
      format: 'JSONEachRow',
    }),
    readWatermark(client, database),
  ]);
  const values = await valuesRs.json<Record<string, string | number>>();
  const bucketKey = (r: Record<string, string | number>) => `${String(r.customer)}\u0000${String(r.meter)}\u0000${String(r.bs)}`;
  const latestOf = new Map((await latestRs.json<Record<string, string>>()).map((r) => [bucketKey(r), Number(r.latest_ws)]));

  return values.map((r) => {
    const native = String(r.native) as WindowSize;
    if (q.window && !isCoarserOrEqual(q.window, native)) {
      throw new MeterlineError('query_window', `meter ${String(r.meter)} is counted per ${native}: --window ${q.window} is finer than that`);
    }
    const events = Number(r.events);
    const value = aggregateValue(String(r.aggregation), { events, sum: String(r.sum_v), max: String(r.max_v), last: String(r.last_v), uniqueCount: Number(r.uniq_v) });
    const start = Number(r.bs);
    const end = q.window === 'month' ? monthOf(start).end : start + WINDOW_MS[q.window ?? native];
    const latest = latestOf.get(bucketKey(r)) ?? start;
    return {
      tenant: String(r.tenant),
      customer: String(r.customer),
      meter: String(r.meter),
      window_start: new Date(start).toISOString(),
      window_end: new Date(end).toISOString(),
      value,
      events,
      state: counterState({ start: latest, end: latest + WINDOW_MS[native] }, Number(r.lateness), watermark),
    };
  });
}
