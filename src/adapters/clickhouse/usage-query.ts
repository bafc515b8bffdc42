import type { ClickHouseClient } from '@clickhouse/client';
import { aggregateValue, STATE_RANK } from '../../domain/counters';
import type { CounterState } from '../../domain/lateness';
import { isCoarserOrEqual, monthOf, WINDOW_MS, type QueryWindow } from '../../domain/windows';
import type { WindowSize } from '../../domain/meters';
import { MeterlineError } from '../../runtime/errors';
import { assertIdentifier } from './migrations';

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
 * taken from the counters (the least settled window in the bucket; no counter yet = open).
 */
export async function queryUsage(client: ClickHouseClient, database: string, q: UsageQuery): Promise<UsageRow[]> {
  assertIdentifier(database);
  const bucket = q.window ? BUCKET[q.window] : 'window_start';
  const params = { tenant: q.tenant, customer: q.customer ?? '', meter: q.meter ?? '', from: q.from, to: q.to };
  const filter = `tenant = {tenant:String} AND ({customer:String} = '' OR customer = {customer:String})
        AND ({meter:String} = '' OR meter = {meter:String})
        AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64})`;
  const valuesRs = await client.query({
    query: `
      SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(${bucket})) AS bs, count() AS events,
             toString(sum(value)) AS sum_v, toString(max(value)) AS max_v, toString(argMax(value, (event_time, id))) AS last_v,
             uniqExact(properties[meter_unique_property]) AS uniq_v,
             argMax(meter_aggregation, ingested_at) AS aggregation, argMax(meter_window, ingested_at) AS native
      FROM ${database}.usage_events
      WHERE disposition = 'counted' AND ${filter}
      GROUP BY tenant, customer, meter, bs
      ORDER BY customer, meter, toInt64(bs)`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const values = await valuesRs.json<Record<string, string | number>>();

  const statesRs = await client.query({
    query: `
      SELECT customer, meter, toString(toUnixTimestamp64Milli(${bucket})) AS bs, min(multiIf(state = 'final', 2, state = 'closed', 1, 0)) AS rank
      FROM ${database}.usage_counters FINAL
      WHERE ${filter}
      GROUP BY customer, meter, bs`,
    query_params: params,
    format: 'JSONEachRow',
  });
  const rankOf = new Map((await statesRs.json<{ customer: string; meter: string; bs: string; rank: number | string }>()).map((r) => [`${r.customer}\u0000${r.meter}\u0000${r.bs}`, Number(r.rank)]));
  const stateByRank = Object.fromEntries(Object.entries(STATE_RANK).map(([s, r]) => [r, s as CounterState])) as Record<number, CounterState>;

  return values.map((r) => {
    const native = String(r.native) as WindowSize;
    if (q.window && !isCoarserOrEqual(q.window, native)) {
      throw new MeterlineError('query_window', `meter ${String(r.meter)} is counted per ${native}: --window ${q.window} is finer than that`);
    }
    const events = Number(r.events);
    const value = aggregateValue(String(r.aggregation), { events, sum: String(r.sum_v), max: String(r.max_v), last: String(r.last_v), uniqueCount: Number(r.uniq_v) });
    const start = Number(r.bs);
    const end = q.window === 'month' ? monthOf(start).end : start + WINDOW_MS[q.window ?? native];
    const rank = rankOf.get(`${String(r.customer)}\u0000${String(r.meter)}\u0000${String(r.bs)}`) ?? STATE_RANK.open;
    return {
      tenant: String(r.tenant),
      customer: String(r.customer),
      meter: String(r.meter),
      window_start: new Date(start).toISOString(),
      window_end: new Date(end).toISOString(),
      value,
      events,
      state: stateByRank[rank] ?? 'open',
    };
  });
}
