import { formatDecimal, parseDecimal } from './decimal';
import { windowKey } from './keys';
import { counterState, type CounterState } from './lateness';
import type { WindowSize } from './meters';
import { WINDOW_MS } from './windows';

/** Identifies one counter: a (tenant, customer, meter) in one window. */
export interface WindowKey {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly windowStart: number;
}

/** Exact aggregates of one window's counted events, with the meter definition they were counted under. */
export interface WindowAggregates extends WindowKey {
  readonly events: number;
  readonly sum: string;
  readonly max: string;
  readonly last: string;
  readonly uniqueCount: number;
  readonly aggregation: string;
  readonly window: WindowSize;
  readonly allowedLatenessMs: number;
  readonly lastIngestedAt: number;
}

export interface CounterRow extends WindowKey {
  readonly windowEnd: number;
  readonly aggregation: string;
  /** Exact decimal text. */
  readonly value: string;
  readonly events: number;
  readonly state: CounterState;
  readonly allowedLatenessMs: number;
  readonly lastIngestedAt: number;
}

export const STATE_RANK: Readonly<Record<CounterState, number>> = { open: 0, closed: 1, final: 2 };

/**
 * Monotone in what a recomputation saw (the ledger only grows, so more events means a later,
 * fuller read) and then in state: the highest version is always the truest row.
 */
export function counterVersion(events: number, state: CounterState): number {
  return events * 4 + STATE_RANK[state];
}

export function windowKeyString(k: WindowKey): string {
  return windowKey(k);
}

const canonical = (text: string) => {
  const d = parseDecimal(text);
  if (!d.ok) throw new Error(`ClickHouse returned a non-decimal aggregate: ${text}`);
  return formatDecimal(d.units);
};

/** The value a meter reports from the exact aggregates of its counted events. */
export function aggregateValue(
  aggregation: string,
  a: Pick<WindowAggregates, 'events' | 'sum' | 'max' | 'last' | 'uniqueCount'>,
): string {
  switch (aggregation) {
    case 'sum':
      return canonical(a.sum);
    case 'count':
      return String(a.events);
    case 'max':
      return canonical(a.max);
    case 'last':
      return canonical(a.last);
    case 'unique_count':
      return String(a.uniqueCount);
    default:
      throw new Error(`unknown aggregation ${JSON.stringify(aggregation)}`);
  }
}

/** The counter a window's aggregates make, in the state the watermark puts it. Pure. */
export function counterFrom(a: WindowAggregates, watermark: number | null): CounterRow {
  const windowEnd = a.windowStart + WINDOW_MS[a.window];
  const value = aggregateValue(a.aggregation, a);
  return {
    tenant: a.tenant,
    customer: a.customer,
    meter: a.meter,
    windowStart: a.windowStart,
    windowEnd,
    aggregation: a.aggregation,
    value,
    events: a.events,
    state: counterState({ start: a.windowStart, end: windowEnd }, a.allowedLatenessMs, watermark),
    allowedLatenessMs: a.allowedLatenessMs,
    lastIngestedAt: a.lastIngestedAt,
  };
}

/** A stored counter whose state the watermark has moved on, or null if it stands. */
export function advanceState<T extends CounterRow>(row: T, watermark: number | null): T | null {
  const next = counterState({ start: row.windowStart, end: row.windowEnd }, row.allowedLatenessMs, watermark);
  return STATE_RANK[next] > STATE_RANK[row.state] ? { ...row, state: next } : null;
}
