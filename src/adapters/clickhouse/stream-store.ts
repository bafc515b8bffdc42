import type { ClickHouseClient } from '@clickhouse/client';
import { aggregateValue } from '../../domain/counters';
import type { WindowSize } from '../../domain/meters';
import { billingPeriodOf, WINDOW_MS } from '../../domain/windows';
import { listCustomers } from './customer-store';
import { assertIdentifier } from './migrations';
import { scopeCondition, type StreamKey, type StreamScope } from './stream-scope';

/** A delta stream's running total over all its windows, and the window that changed last. */
export interface DeltaStream {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly total: string;
  readonly windowStart: number;
  readonly windowEnd: number;
}

/** An absolute stream's value over one billing period (monthly from the anchor day, UTC), recomputed from the ledger. */
export interface AbsoluteStream {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly periodStart: number;
  readonly value: string;
  readonly windowStart: number;
  readonly windowEnd: number;
}

/** A stream whose counters were written since some instant, and the oldest window written. */
export interface ChangedStream extends StreamKey {
  readonly oldestWindowStart: number;
}

export interface StreamStore {
  deltaStreams(meters: readonly string[], scope?: StreamScope): Promise<DeltaStream[]>;
  /** `fromTime`: only billing periods ending after it (the period holding it and later ones). */
  absoluteStreams(meters: readonly string[], anchorDay?: number, scope?: StreamScope, fromTime?: number): Promise<AbsoluteStream[]>;
  /**
   * Streams with a counter row written at or after `since` (ms, by the writer's clock), and
   * streams of customers whose Stripe mapping changed since then.
   */
  changedStreams(since: number): Promise<ChangedStream[]>;
  /** (tenant \0 customer) → Stripe customer id: every mapping, or those imported since `since` (ms). */
  customerMappings(since?: number): Promise<Map<string, string>>;
}

export function createStreamStore(client: ClickHouseClient, database: string): StreamStore {
  assertIdentifier(database);
  return {
    async deltaStreams(meters, scope) {
      if (meters.length === 0 || scope?.length === 0) return [];
      const streams = scopeCondition(scope);
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(sum(value)) AS total,
                 toString(toUnixTimestamp64Milli(argMax(window_start, (updated_at, window_start)))) AS ws,
                 toString(toUnixTimestamp64Milli(argMax(window_end, (updated_at, window_start)))) AS we
          FROM ${database}.usage_counters FINAL
          WHERE meter IN {meters:Array(String)} AND ${streams.sql}
          GROUP BY tenant, customer, meter`,
        query_params: { meters, ...streams.params },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string>>();
      return rows.map((r) => ({ tenant: r.tenant!, customer: r.customer!, meter: r.meter!, total: r.total!, windowStart: Number(r.ws), windowEnd: Number(r.we) }));
    },

    async absoluteStreams(meters, anchorDay = 1, scope, fromTime = 0) {
      if (meters.length === 0 || scope?.length === 0) return [];
      const streams = scopeCondition(scope);
      // Only periods from the one holding fromTime: a counted event's window lies in its period.
      const from = billingPeriodOf(fromTime, anchorDay).start;
      // The period starts on the anchor day of this month, or of the previous one before it.
      const period = `toDateTime64(if(toDayOfMonth(window_start) >= {anchor:UInt8},
          toStartOfMonth(window_start) + ({anchor:UInt8} - 1),
          addMonths(toStartOfMonth(window_start), -1) + ({anchor:UInt8} - 1)), 3, 'UTC')`;
      const where = `disposition = 'counted' AND meter IN {meters:Array(String)} AND ${streams.sql} AND window_start >= fromUnixTimestamp64Milli({from:Int64})`;
      const params = { meters, anchor: anchorDay, from, ...streams.params };
      // Recomputed from the ledger per period (a unique count over a month is not a sum of
      // windows), by merging the by_window projection's per-window states: both queries use
      // only its keys and aggregates, so they read per-window rows, not events.
      const [values, latest] = await Promise.all([
        client.query({
          query: `
            SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(${period})) AS period,
                   count() AS events, toString(sum(value)) AS sum_v, toString(max(value)) AS max_v,
                   toString(argMax(value, (event_time, id))) AS last_v, uniqExact(properties[meter_unique_property]) AS uniq_v,
                   argMax(meter_aggregation, ingested_at) AS aggregation
            FROM ${database}.usage_events
            WHERE ${where}
            GROUP BY tenant, customer, meter, period`,
          query_params: params,
          format: 'JSONEachRow',
        }),
        // The latest window of each period with usage (the push's timestamp goes inside it).
        client.query({
          query: `
            SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(period)) AS period,
                   toString(toUnixTimestamp64Milli(max(w))) AS ws, argMax(native, w) AS native
            FROM (
              SELECT tenant, customer, meter, window_start AS w, ${period} AS period, argMax(meter_window, ingested_at) AS native
              FROM ${database}.usage_events
              WHERE ${where}
              GROUP BY tenant, customer, meter, window_start)
            GROUP BY tenant, customer, meter, period`,
          query_params: params,
          format: 'JSONEachRow',
        }),
      ]);
      const periodKey = (r: Record<string, string | number>) => `${r.tenant}\u0000${r.customer}\u0000${r.meter}\u0000${r.period}`;
      const windows = new Map((await latest.json<Record<string, string>>()).map((r) => [periodKey(r), r]));
      const rows = await values.json<Record<string, string | number>>();
      return rows.map((r) => {
        const w = windows.get(periodKey(r));
        const ws = Number(w?.ws ?? r.period);
        return {
          tenant: String(r.tenant),
          customer: String(r.customer),
          meter: String(r.meter),
          periodStart: Number(r.period),
          value: aggregateValue(String(r.aggregation), {
            events: Number(r.events),
            sum: String(r.sum_v),
            max: String(r.max_v),
            last: String(r.last_v),
            uniqueCount: Number(r.uniq_v),
          }),
          windowStart: ws,
          windowEnd: ws + (WINDOW_MS[String(w?.native) as WindowSize] ?? WINDOW_MS.hour),
        };
      });
    },

    async changedStreams(since) {
      // Counter rows are stamped (updated_at) by their writer just before the INSERT: the caller
      // asks from a little before its previous read, so a row stamped then but visible only
      // later is still seen.
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(min(window_start))) AS oldest
          FROM ${database}.usage_counters
          WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64})
             OR (tenant, customer) IN (SELECT tenant, customer FROM ${database}.customers WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64}))
          GROUP BY tenant, customer, meter`,
        query_params: { since: Math.max(0, Math.floor(since)) },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string>>();
      return rows.map((r) => ({ tenant: r.tenant!, customer: r.customer!, meter: r.meter!, oldestWindowStart: Number(r.oldest) }));
    },

    async customerMappings(since) {
      return new Map((await listCustomers(client, database, since)).map((m) => [`${m.tenant}\u0000${m.customer}`, m.stripeCustomerId]));
    },
  };
}
