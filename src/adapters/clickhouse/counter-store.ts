import { TupleParam, type ClickHouseClient } from '@clickhouse/client';
import { counterVersion, type CounterRow, type WindowAggregates, type WindowKey } from '../../domain/counters';
import type { CounterState } from '../../domain/lateness';
import type { WindowSize } from '../../domain/meters';
import { assertIdentifier } from './migrations';
import { dateTime64, dateTime64Micro } from './format';

/** '2026-11-22 10:00:00.123456' (UTC) → ms. */
const micros = (v: string) => Date.parse(`${v.replace(' ', 'T')}Z`);

/** Where a previous settle pass left off: its watermark, and (less an overlap) when it read. */
export interface SettleCursor {
  readonly watermark: number;
  readonly updatedAt: number;
}

/** A counter as stored, with when it was last written. */
export interface StoredCounter extends CounterRow {
  readonly updatedAt: number;
}

export interface CounterStore {
  aggregate(keys: readonly WindowKey[]): Promise<WindowAggregates[]>;
  /**
   * Stamps each row `now`, or keeps the stamp of a stored row written back (a state change moves
   * no total: neither the pusher nor the next settle pass has anything to look at again).
   */
  write(rows: readonly (CounterRow | StoredCounter)[], now: number): Promise<void>;
  /**
   * Counters not yet final whose window ended at or before `watermark`. With `since`, only those
   * whose state the move from `since.watermark` to `watermark` changes, or written at or after
   * `since.updatedAt`: everything else was settled by the pass at `since`.
   */
  unsettled(watermark: number, since?: SettleCursor): Promise<StoredCounter[]>;
  loadWatermarks(topic: string): Promise<Map<number, number>>;
  saveWatermarks(topic: string, maxByPartition: ReadonlyMap<number, number>, now: number): Promise<void>;
}

export function createCounterStore(client: ClickHouseClient, database: string): CounterStore {
  assertIdentifier(database);
  const t = (name: string) => `${database}.${name}`;
  return {
    async aggregate(keys) {
      if (keys.length === 0) return [];
      // Served by a per-window projection of the ledger: partial aggregates of every part, merged
      // now. The tuple IN selects exactly the windows asked for, and ClickHouse reads them through
      // by_window_time (time first): a unit's windows share a few window starts, so the cost
      // follows the unit, not the history (through the stream-first by_window, every customer's
      // windows would be touched, all of history).
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(window_start)) AS ws,
                 count() AS events, toString(sum(value)) AS sum, toString(max(value)) AS max,
                 toString(argMax(value, (event_time, id))) AS last,
                 uniqExact(properties[meter_unique_property]) AS uniq,
                 toString(max(ingested_at)) AS last_ingested_at,
                 argMax(meter_aggregation, ingested_at) AS aggregation,
                 argMax(meter_window, ingested_at) AS window,
                 toString(argMax(meter_allowed_lateness_ms, ingested_at)) AS lateness
          FROM ${t('usage_events')}
          WHERE disposition = 'counted'
            AND tenant IN {tenants:Array(String)}
            AND (tenant, customer, meter, window_start) IN {keys:Array(Tuple(String, String, String, DateTime64(3, 'UTC')))}
          GROUP BY tenant, customer, meter, window_start`,
        query_params: {
          tenants: [...new Set(keys.map((k) => k.tenant))],
          keys: keys.map((k) => new TupleParam([k.tenant, k.customer, k.meter, dateTime64(k.windowStart)])),
        },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string | number>>();
      return rows
        .map((r) => ({
          tenant: String(r.tenant),
          customer: String(r.customer),
          meter: String(r.meter),
          windowStart: Number(r.ws),
          events: Number(r.events),
          sum: String(r.sum),
          max: String(r.max),
          last: String(r.last),
          uniqueCount: Number(r.uniq),
          aggregation: String(r.aggregation),
          window: String(r.window) as WindowSize,
          allowedLatenessMs: Number(r.lateness),
          lastIngestedAt: micros(String(r.last_ingested_at)),
        }));
    },

    async write(rows, now) {
      if (rows.length === 0) return;
      await client.insert({
        table: t('usage_counters'),
        values: rows.map((r) => ({
          tenant: r.tenant,
          customer: r.customer,
          meter: r.meter,
          window_start: dateTime64(r.windowStart),
          window_end: dateTime64(r.windowEnd),
          aggregation: r.aggregation,
          value: r.value,
          events: r.events,
          allowed_lateness_ms: r.allowedLatenessMs,
          version: counterVersion(r.events, r.state),
          state: r.state,
          last_ingested_at: dateTime64Micro(r.lastIngestedAt),
          updated_at: dateTime64Micro('updatedAt' in r ? r.updatedAt : now),
        })),
        format: 'JSONEachRow',
      });
    },

    async unsettled(watermark, since) {
      // Two steps: the candidate windows from a plain scan of the (small) state columns, then
      // their current rows with FINAL, read through the primary key. FINAL over the whole table
      // every second would grow with every window ever counted.
      // A row the previous pass read was left in the state its watermark gives it, so it needs
      // a change now only if its window's end or its final deadline (end + lateness) lies in
      // (since.watermark, watermark]; rows written since that pass read may need any change.
      const recent = since
        ? `AND ((toUnixTimestamp64Milli(window_end) > {sinceWm:Int64} AND state = 'open')
                 OR toUnixTimestamp64Milli(window_end) + allowed_lateness_ms BETWEEN {sinceWm:Int64} + 1 AND {wm:Int64}
                 OR updated_at >= fromUnixTimestamp64Milli({sinceAt:Int64}))`
        : '';
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(toUnixTimestamp64Milli(window_end)) AS we,
                 aggregation, toString(value) AS value, events, state, toString(allowed_lateness_ms) AS lateness,
                 toString(last_ingested_at) AS last_ingested_at, toString(updated_at) AS updated_at
          FROM ${t('usage_counters')} FINAL
          WHERE (tenant, customer, meter, window_start) IN (
                  SELECT tenant, customer, meter, window_start FROM ${t('usage_counters')}
                  WHERE state != 'final' AND window_end <= fromUnixTimestamp64Milli({wm:Int64}) ${recent})
            AND state != 'final' AND window_end <= fromUnixTimestamp64Milli({wm:Int64})`,
        query_params: { wm: watermark, sinceWm: since?.watermark ?? 0, sinceAt: Math.max(0, Math.floor(since?.updatedAt ?? 0)) },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string | number>>();
      return rows.map((r) => ({
        tenant: String(r.tenant),
        customer: String(r.customer),
        meter: String(r.meter),
        windowStart: Number(r.ws),
        windowEnd: Number(r.we),
        aggregation: String(r.aggregation),
        value: String(r.value),
        events: Number(r.events),
        state: r.state as CounterState,
        allowedLatenessMs: Number(r.lateness),
        lastIngestedAt: micros(String(r.last_ingested_at)),
        updatedAt: micros(String(r.updated_at)),
      }));
    },

    async loadWatermarks(topic) {
      const rs = await client.query({
        query: `SELECT partition, toString(toUnixTimestamp64Milli(max(max_event_time))) AS t FROM ${t('watermarks')} WHERE topic = {topic:String} GROUP BY partition`,
        query_params: { topic },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ partition: number | string; t: string }>();
      return new Map(rows.map((r) => [Number(r.partition), Number(r.t)]));
    },

    async saveWatermarks(topic, maxByPartition, now) {
      if (maxByPartition.size === 0) return;
      await client.insert({
        table: t('watermarks'),
        values: [...maxByPartition].map(([partition, max]) => ({
          topic,
          partition,
          max_event_time: dateTime64(max),
          updated_at: dateTime64Micro(now),
        })),
        format: 'JSONEachRow',
      });
    },
  };
}
