import type { MeterDefinition } from './meters';
import { windowOf, windowStartOf, type Window } from './windows';

export type CounterState = 'open' | 'closed' | 'final';

/** open until the watermark reaches the window's end; closed until end + allowed lateness; final after. */
export function counterState(window: Window, allowedLatenessMs: number, watermark: number | null): CounterState {
  if (watermark === null || watermark < window.end) return 'open';
  return watermark < window.end + allowedLatenessMs ? 'closed' : 'final';
}

export type LatenessDecision =
  | { readonly disposition: 'counted'; readonly window: Window; readonly late: boolean }
  | { readonly disposition: 'too_late'; readonly window: Window; readonly reason: string };

/**
 * Decided once, when an event is first stored, and recorded with it (design rule 6): a window
 * that is already final takes no more events; those are kept in late_events, never dropped.
 * Events published by `meterline backfill` are the exception: they are counted wherever they fall.
 */
export function decideLateness(eventTime: number, meter: MeterDefinition, watermark: number | null, opts: { backfill?: boolean } = {}): LatenessDecision {
  const window = windowOf(eventTime, meter.window);
  const state = counterState(window, meter.allowedLatenessMs, watermark);
  // Backfilled history is published on purpose, after its windows closed: it is counted (late).
  if (opts.backfill) return { disposition: 'counted', window, late: state !== 'open' };
  if (state === 'final') {
    return {
      disposition: 'too_late',
      window,
      reason:
        `window ${new Date(window.start).toISOString()}/${new Date(window.end).toISOString()} was final: ` +
        `watermark ${new Date(watermark!).toISOString()} had passed its end plus the allowed lateness of ${meter.allowedLatenessMs} ms`,
    };
  }
  return { disposition: 'counted', window, late: state === 'closed' };
}

/**
 * decideLateness for many events against one watermark: an event's decision depends only on its
 * meter, its window and the backfill flag, so each (meter, window, flag) is decided once and the
 * decision shared (a unit's events fall in a few windows; one object each, not one per event).
 */
export function createLatenessDecider(watermark: number | null): (eventTime: number, meter: MeterDefinition, opts?: { backfill?: boolean }) => LatenessDecision {
  const decided = new Map<MeterDefinition, Map<number, LatenessDecision>>();
  const decidedBackfill = new Map<MeterDefinition, Map<number, LatenessDecision>>();
  return (eventTime, meter, opts = {}) => {
    const byMeter = opts.backfill ? decidedBackfill : decided;
    let byWindow = byMeter.get(meter);
    if (!byWindow) byMeter.set(meter, (byWindow = new Map()));
    const start = windowStartOf(eventTime, meter.window);
    let d = byWindow.get(start);
    if (!d) byWindow.set(start, (d = decideLateness(eventTime, meter, watermark, opts)));
    return d;
  };
}
