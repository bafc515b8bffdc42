import { WINDOW_MS } from '../../domain/windows';

/**
 * The exact per-window aggregates of the ledger, defined once. Both projections of usage_events
 * keep exactly these expressions, written atomically with the ledger rows; every reader selects
 * them with the same text, so ClickHouse answers from a projection's per-part states (merged at
 * read) instead of the events.
 */
export const WINDOW_AGGREGATES = {
  events: 'count()',
  sum: 'sum(value)',
  max: 'max(value)',
  // The latest value (by event time, then id) among the window's events counted as 'last'. Only
  // those: an argMax over a tuple is ClickHouse's slow generic path, and computed for every row it
  // was about a fifth of the engine's CPU per ledger INSERT (BENCHMARKS.md, twelfth session). Its
  // value is read only for windows whose aggregation is 'last' (see counters.ts aggregateValue).
  last: "argMaxIf(value, (event_time, id), meter_aggregation = 'last')",
  uniq: 'uniqExact(properties[meter_unique_property])',
  lastIngestedAt: 'max(ingested_at)',
  aggregation: 'argMax(meter_aggregation, ingested_at)',
  window: 'argMax(meter_window, ingested_at)',
  lateness: 'argMax(meter_allowed_lateness_ms, ingested_at)',
} as const;

/**
 * A span of windows' latest window with usage (the window a push is timestamped in), kept by both
 * projections. Before they kept it, each read of stream spans (span-reads.ts) took a second
 * statement that grouped by window first, about as costly as the first (BENCHMARKS.md, fourteenth
 * session). In both, not in by_window alone: a read of many streams' recent windows is cheaper
 * from by_window_time, and ClickHouse can only pick a projection that keeps every aggregate asked
 * (by_window alone made a 10,000-stream alert check 3× slower with 25 days of history).
 */
export const LATEST_WINDOW = 'max(window_start)';

/** LATEST_WINDOW as a reader parses it: latest_ws, ms since the epoch, as text. */
export const SELECT_LATEST_WINDOW = `toString(toUnixTimestamp64Milli(${LATEST_WINDOW})) AS latest_ws`;

/** The aggregate list of the projections. */
export const PROJECTION_AGGREGATES = [...Object.values(WINDOW_AGGREGATES), LATEST_WINDOW].join(', ');

/**
 * The aggregates as text columns a reader parses exactly (decimals as strings):
 * events, sum_v, max_v, last_v, uniq_v, aggregation, native, lateness, last_ingested_at.
 */
export const SELECT_WINDOW_AGGREGATES = `${WINDOW_AGGREGATES.events} AS events, toString(${WINDOW_AGGREGATES.sum}) AS sum_v,
  toString(${WINDOW_AGGREGATES.max}) AS max_v, toString(${WINDOW_AGGREGATES.last}) AS last_v, ${WINDOW_AGGREGATES.uniq} AS uniq_v,
  ${WINDOW_AGGREGATES.aggregation} AS aggregation, ${WINDOW_AGGREGATES.window} AS native,
  toString(${WINDOW_AGGREGATES.lateness}) AS lateness, toString(${WINDOW_AGGREGATES.lastIngestedAt}) AS last_ingested_at`;

/** The aggregates as the usage_counters view's inner query names them (typed values, not text). */
export const VIEW_WINDOW_AGGREGATES = `${WINDOW_AGGREGATES.events} AS events, ${WINDOW_AGGREGATES.sum} AS sum_value, ${WINDOW_AGGREGATES.max} AS max_value,
  ${WINDOW_AGGREGATES.last} AS last_value, ${WINDOW_AGGREGATES.uniq} AS unique_count,
  ${WINDOW_AGGREGATES.lastIngestedAt} AS last_ingested_at, ${WINDOW_AGGREGATES.aggregation} AS aggregation,
  ${windowLengthSql(WINDOW_AGGREGATES.window)} AS window_ms, ${WINDOW_AGGREGATES.lateness} AS allowed_lateness_ms`;

/** A window's length in ms from its meter_window name (SQL over a column or alias). */
export function windowLengthSql(column: string): string {
  return `multiIf(${column} = 'minute', ${WINDOW_MS.minute}, ${column} = 'day', ${WINDOW_MS.day}, ${WINDOW_MS.hour})`;
}

/**
 * A window's state from its end, its allowed lateness and a watermark (DateTime64(3); the epoch
 * when none is known), as domain/lateness.ts counterState decides it: open until the watermark
 * reaches the end, closed until end + lateness, final after.
 */
export function windowStateSql(end: string, latenessMs: string, watermark: string): string {
  return `multiIf(${watermark} < ${end}, 'open', ${watermark} < ${end} + toIntervalMillisecond(${latenessMs}), 'closed', 'final')`;
}
