import { formatDecimal, parseDecimal } from './decimal';

/**
 * Exact aggregates of some of a stream's windows (within one billing period, or all time), as
 * the ledger's per-window aggregates merge them. Sums, counts, maxima and the last value
 * compose across disjoint spans of windows, so a total is an older span's (kept in memory) plus
 * a recent span's (read): the pusher's reads follow recent usage, not the history. A unique
 * count does not compose (the same value may occur in both spans): it is always read whole.
 */
export interface StreamPart {
  readonly events: number;
  /** Exact decimal units (scale 9). */
  readonly sum: bigint;
  readonly max: bigint | null;
  /** The value of the span's last event (by event time, then id). */
  readonly last: bigint | null;
  readonly uniqueCount: number;
  readonly aggregation: string;
  /** The span's latest window with usage. */
  readonly latestWindowStart: number;
}

export const EMPTY_PART: StreamPart = { events: 0, sum: 0n, max: null, last: null, uniqueCount: 0, aggregation: '', latestWindowStart: -Infinity };

/** Whether a total can be composed from spans of this aggregation. */
export function composable(aggregation: string): boolean {
  return aggregation !== 'unique_count';
}

/**
 * `older` then `newer`: every window of `newer` starts after every window of `older`, so its
 * last event is the later one. Pure.
 */
export function mergeParts(older: StreamPart, newer: StreamPart): StreamPart {
  if (older.events === 0) return newer;
  if (newer.events === 0) return older;
  if (!composable(newer.aggregation) || !composable(older.aggregation)) throw new Error('a unique count cannot be composed from spans');
  return {
    events: older.events + newer.events,
    sum: older.sum + newer.sum,
    max: older.max === null ? newer.max : newer.max === null ? older.max : older.max > newer.max ? older.max : newer.max,
    last: newer.last,
    uniqueCount: 0,
    aggregation: newer.aggregation,
    latestWindowStart: Math.max(older.latestWindowStart, newer.latestWindowStart),
  };
}

/** The value a meter reports from a part (exact decimal text). */
export function partValue(p: StreamPart): string {
  switch (p.aggregation) {
    case 'sum':
      return formatDecimal(p.sum);
    case 'count':
      return String(p.events);
    case 'max':
      return formatDecimal(p.max ?? 0n);
    case 'last':
      return formatDecimal(p.last ?? 0n);
    case 'unique_count':
      return String(p.uniqueCount);
    default:
      throw new Error(`unknown aggregation ${JSON.stringify(p.aggregation)}`);
  }
}

/** Exact units of a decimal ClickHouse returned. */
export function units(text: string): bigint {
  const d = parseDecimal(text);
  if (!d.ok) throw new Error(`ClickHouse returned a non-decimal aggregate: ${text}`);
  return d.units;
}

const DAY_MS = 86_400_000;

/**
 * Where the pusher splits a stream's windows into the span it keeps in memory (older) and the
 * span it reads (recent): the start of yesterday (UTC). Late events land in recent windows; an
 * event for an older window (a backfill) is announced by the change record with that window,
 * and its stream is then read whole. The split is renewed once it is three days old, so a read
 * covers at most three days of a stream's windows.
 */
export function splitPoint(now: number): number {
  return Math.floor(now / DAY_MS) * DAY_MS - DAY_MS;
}

export function splitExpired(split: number, now: number): boolean {
  return now - split > 3 * DAY_MS;
}
