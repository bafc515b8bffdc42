import type { ClickHouseClient } from '@clickhouse/client';
import type { WindowSize } from '../../domain/meters';
import { units, type StreamPart } from '../../domain/stream-parts';
import { customersCondition, readPieces, scopeCondition, type CustomerKey, type StreamKey, type StreamScope } from './stream-scope';
import { SELECT_LATEST_WINDOW, SELECT_WINDOW_AGGREGATES } from './window-aggregates';

/**
 * About this many streams per statement of a totals read (a customer's streams are never split;
 * see also KEY_BYTES_PER_READ).
 * The embedded engine runs one statement at a time, so ingest's writes queue behind the push
 * loop's reads. Issued all at once, a full cycle's reads held them for seconds: the default
 * benchmark's p99 publish → queryable was 2.6–3.2 s, and 1.0 s with the push loop stopped. In
 * pieces, one statement after another, a write waits for one piece at most and each piece's rows
 * are parsed in a short turn of the event loop: p99 1.0–1.7 s at 5,000 (1.56 s at 2,500). Smaller
 * pieces cost a cycle more statements (each waits its turn behind ingest's), so cycles take longer
 * under load. See BENCHMARKS.md, eighth session.
 */
export const STREAMS_PER_READ = 5_000;

/** One (stream, billing period, older or recent span)'s aggregates, as the ledger's by_window projection serves them. */
export interface PartRow extends StreamKey {
  readonly period: number;
  readonly recent: boolean;
  readonly part: StreamPart;
  readonly native: WindowSize;
}

/**
 * The pusher's reads of the ledger's per-window aggregates (see stream-store.ts for what is made
 * of them). `proveProjection` (tests only): every read runs with force_optimize_projection.
 */
export function createPartReader(
  client: ClickHouseClient,
  database: string,
  opts: { proveProjection?: boolean; streamsPerRead?: number } = {},
): (meters: readonly string[], scope: StreamScope, from: number, split: number, anchorDay: number | null) => Promise<PartRow[]> {
  const forceProjection = opts.proveProjection ? '\n        SETTINGS force_optimize_projection = 1' : '';
  const streamsPerRead = opts.streamsPerRead ?? STREAMS_PER_READ;

  /**
   * Per (stream, period, older/recent span) aggregates of windows starting at or after `from`:
   * of every stream (scope undefined) or of the streams in scope, read in pieces of about
   * `streamsPerRead` streams, one statement after another. Each stream is read whole by one
   * piece, so the rows are those of a single read; each piece sees the ledger as its statement
   * begins, as a single read would for all of them (later usage is in the change record).
   */
  const readParts = async (meters: readonly string[], scope: StreamScope, from: number, split: number, anchorDay: number | null): Promise<PartRow[]> => {
    if (meters.length === 0 || scope?.length === 0) return [];
    const conditions =
      scope === undefined
        ? readPieces(await customersWithUsage(meters, from), (c) => c.streams, streamsPerRead).map(customersCondition)
        : readPieces(scope, () => 1, streamsPerRead).map(scopeCondition);
    const rows: PartRow[] = [];
    for (const streams of conditions) for (const row of await readPiece(meters, streams, from, split, anchorDay)) rows.push(row);
    return rows;
  };

  /** Every customer with counted usage of `meters` in windows from `from` on, and its number of streams (served by the by_window projection). */
  const customersWithUsage = async (meters: readonly string[], from: number): Promise<(CustomerKey & { streams: number })[]> => {
    const rs = await client.query({
      query: `
        SELECT tenant, customer, count() AS streams
        FROM (
          SELECT tenant, customer, meter, count() AS events
          FROM ${database}.usage_events
          WHERE disposition = 'counted' AND meter IN {meters:Array(String)} AND window_start >= fromUnixTimestamp64Milli({from:Int64})
          GROUP BY tenant, customer, meter)
        GROUP BY tenant, customer
        ORDER BY tenant, customer${forceProjection}`,
      query_params: { meters, from: Math.max(0, from) },
      format: 'JSONEachRow',
    });
    return (await rs.json<{ tenant: string; customer: string; streams: number | string }>()).map((r) => ({ tenant: r.tenant, customer: r.customer, streams: Number(r.streams) }));
  };

  /** One piece of readParts: the streams matching `streams` (a condition on tenant, customer, meter). */
  const readPiece = async (
    meters: readonly string[],
    streams: { sql: string; params: Record<string, unknown> },
    from: number,
    split: number,
    anchorDay: number | null,
  ): Promise<PartRow[]> => {
    // The billing period starts on the anchor day of this month, or of the previous one before it.
    const period =
      anchorDay === null
        ? '0'
        : `toUnixTimestamp64Milli(toDateTime64(if(toDayOfMonth(window_start) >= {anchor:UInt8},
            toStartOfMonth(window_start) + ({anchor:UInt8} - 1),
            addMonths(toStartOfMonth(window_start), -1) + ({anchor:UInt8} - 1)), 3, 'UTC'))`;
    // Served by a per-window projection (by_window or by_window_time, whichever reads fewer
    // marks): per-window states merged, not events read. Every aggregate must be one the
    // projections keep (each span's latest window too: LATEST_WINDOW), else ClickHouse reads the
    // events instead, a cost that grows with history. The tests run it with
    // force_optimize_projection (`proveProjection`), which fails a query no projection can serve.
    const where = `disposition = 'counted' AND meter IN {meters:Array(String)} AND ${streams.sql}
          AND window_start >= fromUnixTimestamp64Milli({from:Int64})`;
    const recent = `window_start >= fromUnixTimestamp64Milli({split:Int64})`;
    const params = { meters, from: Math.max(0, from), split: Math.max(0, split), anchor: anchorDay ?? 1, ...streams.params };
    // One statement at a time (see STREAMS_PER_READ), its result parsed before the next is asked for.
    const rows = await (
      await client.query({
        query: `
        SELECT tenant, customer, meter, toString(${period}) AS period, ${recent} AS recent, ${SELECT_WINDOW_AGGREGATES}, ${SELECT_LATEST_WINDOW}
        FROM ${database}.usage_events
        WHERE ${where}
        GROUP BY tenant, customer, meter, period, recent${forceProjection}`,
        query_params: params,
        format: 'JSONEachRow',
      })
    ).json<Record<string, string | number>>();
    return rows.map((r) => ({
      tenant: String(r.tenant),
      customer: String(r.customer),
      meter: String(r.meter),
      period: Number(r.period),
      recent: Number(r.recent) === 1,
      native: String(r.native) as WindowSize,
      part: {
        events: Number(r.events),
        sum: units(String(r.sum_v)),
        max: units(String(r.max_v)),
        last: units(String(r.last_v)),
        uniqueCount: Number(r.uniq_v),
        aggregation: String(r.aggregation),
        latestWindowStart: Number(r.latest_ws),
      },
    }));
  };

  return readParts;
}
