import type { ClickHouseClient } from '@clickhouse/client';
import type { PeriodTotal } from '../../domain/alert-crossings';
import { aggregateValue } from '../../domain/counters';
import { parseDecimal } from '../../domain/decimal';
import { billingPeriodOf } from '../../domain/windows';
import { assertIdentifier } from './migrations';
import { SELECT_WINDOW_AGGREGATES } from './window-aggregates';
import { scopeCondition, type StreamScope } from './stream-scope';

/**
 * Exact billing-period totals of the given streams (or every stream of `meters`), from the
 * deduplicated ledger's counted events, in the periods from the one holding `fromTime` on.
 * The period is monthly from `anchorDay` (00:00 UTC), as windows.ts billingPeriodOf computes it.
 */
export async function periodTotals(
  client: ClickHouseClient,
  database: string,
  q: { meters: readonly string[]; anchorDay: number; scope: StreamScope; fromTime: number },
): Promise<PeriodTotal[]> {
  assertIdentifier(database);
  if (q.meters.length === 0 || q.scope?.length === 0) return [];
  const streams = scopeCondition(q.scope);
  const from = billingPeriodOf(q.fromTime, q.anchorDay).start;
  const period = `toDateTime64(if(toDayOfMonth(window_start) >= {anchor:UInt8},
      toStartOfMonth(window_start) + ({anchor:UInt8} - 1),
      addMonths(toStartOfMonth(window_start), -1) + ({anchor:UInt8} - 1)), 3, 'UTC')`;
  const rs = await client.query({
    query: `
      SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(${period})) AS period,
             ${SELECT_WINDOW_AGGREGATES}
      FROM ${database}.usage_events
      WHERE disposition = 'counted' AND meter IN {meters:Array(String)} AND ${streams.sql}
        AND window_start >= fromUnixTimestamp64Milli({from:Int64})
      GROUP BY tenant, customer, meter, period`,
    query_params: { meters: q.meters, anchor: q.anchorDay, from, ...streams.params },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<Record<string, string | number>>();
  return rows.map((r) => {
    const periodStart = Number(r.period);
    const value = aggregateValue(String(r.aggregation), {
      events: Number(r.events),
      sum: String(r.sum_v),
      max: String(r.max_v),
      last: String(r.last_v),
      uniqueCount: Number(r.uniq_v),
    });
    const d = parseDecimal(value);
    if (!d.ok) throw new Error(`period total: ${d.reason}`);
    return { tenant: String(r.tenant), customer: String(r.customer), meter: String(r.meter), periodStart, periodEnd: billingPeriodOf(periodStart, q.anchorDay).end, totalUnits: d.units };
  });
}
