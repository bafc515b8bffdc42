import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

export interface LocalRangeTotal {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly local: string;
  readonly reported: bigint;
}

/** Local totals of delta meters over windows starting in [from, to), with what the push ledger reported for them. */
export async function localRangeTotals(client: ClickHouseClient, database: string, meters: readonly string[], from: number, to: number): Promise<LocalRangeTotal[]> {
  assertIdentifier(database);
  if (meters.length === 0) return [];
  const rs = await client.query({
    query: `
      SELECT c.tenant AS tenant, c.customer AS customer, c.meter AS meter, toString(c.local) AS local, toString(ifNull(p.reported, 0)) AS reported
      FROM (
        SELECT tenant, customer, meter, sum(value) AS local FROM ${database}.usage_counters FINAL
        WHERE meter IN {meters:Array(String)}
          AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64})
        GROUP BY tenant, customer, meter
      ) AS c
      LEFT JOIN (
        SELECT tenant, customer, meter, sum(value) AS reported FROM ${database}.stripe_pushes FINAL
        WHERE mode = 'delta' AND status = 'reported'
          AND event_timestamp >= toDateTime(intDiv({from:Int64}, 1000)) AND event_timestamp < toDateTime(intDiv({to:Int64}, 1000))
        GROUP BY tenant, customer, meter
      ) AS p ON c.tenant = p.tenant AND c.customer = p.customer AND c.meter = p.meter
      ORDER BY tenant, customer, meter
      SETTINGS join_use_nulls = 1`,
    query_params: { meters, from, to },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ tenant: string; customer: string; meter: string; local: string; reported: string }>();
  return rows.map((r) => ({ ...r, reported: BigInt(r.reported) }));
}
