import type { ClickHouseClient } from '@clickhouse/client';
import { createCounterStore } from '../adapters/clickhouse/counter-store';
import { assertIdentifier } from '../adapters/clickhouse/migrations';
import type { WindowKey } from '../domain/counters';
import { refreshCounters } from './counters';

export interface RebuildSummary {
  windows: number;
  countersWritten: number;
}

/**
 * Recomputes the counters of every window whose start lies in [from, to) from the ledger.
 * Counters are never edited, only superseded: a rebuilt row wins only if it saw at least as
 * many events (its version), so a rebuild can restore lost counters and never replaces a
 * total with a partial sum. The pusher then sends only the differences it finds.
 */
export async function rebuildCounters(
  ch: ClickHouseClient,
  database: string,
  opts: { from: number; to: number; watermark: number | null; now: number; chunkSize?: number },
): Promise<RebuildSummary> {
  assertIdentifier(database);
  const rs = await ch.query({
    query: `
      SELECT DISTINCT tenant, customer, meter, toString(toUnixTimestamp64Milli(window_start)) AS ws
      FROM ${database}.usage_events
      WHERE disposition = 'counted'
        AND window_start >= fromUnixTimestamp64Milli({from:Int64}) AND window_start < fromUnixTimestamp64Milli({to:Int64})
      ORDER BY tenant, customer, meter, ws`,
    query_params: { from: opts.from, to: opts.to },
    format: 'JSONEachRow',
  });
  const keys: WindowKey[] = (await rs.json<{ tenant: string; customer: string; meter: string; ws: string }>()).map((r) => ({
    tenant: r.tenant,
    customer: r.customer,
    meter: r.meter,
    windowStart: Number(r.ws),
  }));
  const store = createCounterStore(ch, database);
  const chunk = opts.chunkSize ?? 5000;
  let written = 0;
  for (let i = 0; i < keys.length; i += chunk) {
    written += (await refreshCounters(store, keys.slice(i, i + chunk), opts.watermark, () => opts.now)).length;
  }
  return { windows: keys.length, countersWritten: written };
}

/** The worker watermark a stopped system had: the least advanced partition's newest event time, minus the bound. */
export async function persistedWatermark(ch: ClickHouseClient, database: string, topic: string, outOfOrdernessMs: number): Promise<number | null> {
  const maxima = [...(await createCounterStore(ch, database).loadWatermarks(topic)).values()];
  return maxima.length === 0 ? null : Math.min(...maxima) - outOfOrdernessMs;
}
