import type { WindowSize } from './meters';

/** Tumbling event-time windows, UTC, half-open: [start, end). An event exactly at `end` is in the next window. */
export const WINDOW_MS: Readonly<Record<WindowSize, number>> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export interface Window {
  readonly start: number;
  readonly end: number;
}

/** The start of the window holding `eventTime` (no Window object: for per-event hot paths). */
export function windowStartOf(eventTime: number, size: WindowSize): number {
  const ms = WINDOW_MS[size];
  // Epoch milliseconds are UTC and 1970-01-01 is a day boundary, so flooring aligns days to UTC midnight.
  return Math.floor(eventTime / ms) * ms;
}

export function windowOf(eventTime: number, size: WindowSize): Window {
  const start = windowStartOf(eventTime, size);
  return { start, end: start + WINDOW_MS[size] };
}

export type QueryWindow = WindowSize | 'month';
const RANK: Readonly<Record<QueryWindow, number>> = { minute: 0, hour: 1, day: 2, month: 3 };

/** Whether results of a meter with window `native` can be reported per `requested` window. */
export function isCoarserOrEqual(requested: QueryWindow, native: WindowSize): boolean {
  return RANK[requested] >= RANK[native];
}

/** The calendar month (UTC) containing `t`. */
export function monthOf(t: number): Window {
  const d = new Date(t);
  return { start: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1), end: Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) };
}

/**
 * The billing period containing `t`: monthly, starting on `anchorDay` (1-28) at 00:00 UTC.
 * Day 1 is the calendar month.
 */
export function billingPeriodOf(t: number, anchorDay: number): Window {
  const d = new Date(t);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const startMonth = d.getUTCDate() >= anchorDay ? m : m - 1;
  return { start: Date.UTC(y, startMonth, anchorDay), end: Date.UTC(y, startMonth + 1, anchorDay) };
}
