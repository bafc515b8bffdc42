import { streamKey } from '../../domain/keys';
import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

/** Per stream over a reconcile range: usage of its windows, and the delta pushes timestamped in it. */
export interface RangeLedger {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  /** Exact usage of windows starting in [from, to) (decimal text; '0' when none). */
  readonly local: string;
  /** Units of `reported` pushes timestamped in [from, to). */
  readonly reported: bigint;
  /** Of those, units reported at or after `recentSince` (Stripe may not have processed them). */
  readonly recentlyReported: bigint;
  /** Units of `pending` pushes timestamped in [from, to). */
  readonly pending: bigint;
}

/**
 * Every delta stream with usage in the range's windows or pushes timestamped in the range
 * (the two differ: a delta carries earlier windows' usage into the window it is timestamped in).
 */
export async function rangeLedger(client: ClickHouseClient, database: string, meters: readonly string[], from: number, to: number, recentSince: number): Promise<RangeLedger[]> {
  assertIdentifier(database);
  if (meters.length === 0) return [];
  const params = { meters, from, to, recent: recentSince };
  const [usage, pushes] = await Promise.all([
    client
      .query({
        query: `
          SELECT tenant, customer, meter, toString(sum(value)) AS local FROM ${database}.usage_counters FINAL
          WHERE meter IN {meters:Array(String)}
            AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64})
          GROUP BY tenant, customer, meter`,
        query_params: params,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json<{ tenant: string; customer: string; meter: string; local: string }>()),
    client
      .query({
        query: `
          SELECT tenant, customer, meter,
                 toString(sumIf(value, status = 'reported')) AS reported,
                 toString(sumIf(value, status = 'reported' AND updated_at >= fromUnixTimestamp64Milli({recent:Int64}))) AS recent,
                 toString(sumIf(value, status = 'pending')) AS pending
          FROM ${database}.stripe_pushes FINAL
          WHERE mode = 'delta' AND meter IN {meters:Array(String)}
            AND event_timestamp >= toDateTime(intDiv({from:Int64}, 1000)) AND event_timestamp < toDateTime(intDiv({to:Int64}, 1000))
          GROUP BY tenant, customer, meter`,
        query_params: params,
        format: 'JSONEachRow',
      })
      .then((rs) => rs.json<{ tenant: string; customer: string; meter: string; reported: string; recent: string; pending: string }>()),
  ]);
  const rows = new Map<string, RangeLedger>();
  const row = (r: { tenant: string; customer: string; meter: string }) =>
    rows.get(streamKey(r)) ?? { tenant: r.tenant, customer: r.customer, meter: r.meter, local: '0', reported: 0n, recentlyReported: 0n, pending: 0n };
  for (const u of usage) rows.set(streamKey(u), { ...row(u), local: u.local });
  for (const p of pushes) rows.set(streamKey(p), { ...row(p), reported: BigInt(p.reported), recentlyReported: BigInt(p.recent), pending: BigInt(p.pending) });
  return [...rows.values()].sort((a, b) => streamKey(a).localeCompare(streamKey(b)));
}
