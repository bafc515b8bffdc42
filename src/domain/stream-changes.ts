import type { DedupeDecision } from './ingest-decision';
import { streamKey } from './keys';
import { windowStartOf } from './windows';

/** A (tenant, customer, meter) whose usage a unit changed, and the span of windows it touched. */
export interface StreamChange {
  /** The stream's key (keys.ts streamKey), built once per unit: readers merge changes by it. */
  readonly key: string;
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly oldestWindowStart: number;
  readonly newestWindowStart: number;
}

/**
 * The streams a unit's decisions change: its new events, and its redelivered ones (a crash
 * between the ledger write and the change record is repaired when the unit is re-read). A
 * too-late event changes no total but is included: recording one stream too many only costs the
 * pusher a look. Pure.
 */
export function streamChanges(decisions: readonly DedupeDecision[]): StreamChange[] {
  const byStream = new Map<string, { key: string; tenant: string; customer: string; meter: string; oldestWindowStart: number; newestWindowStart: number }>();
  for (const d of decisions) {
    if (d.kind !== 'new' && d.kind !== 'redelivered') continue;
    const e = d.candidate.event;
    const ws = windowStartOf(e.timestamp, d.candidate.meter.window);
    const key = streamKey(e);
    const c = byStream.get(key);
    if (!c) byStream.set(key, { key, tenant: e.tenant, customer: e.customer, meter: e.meter, oldestWindowStart: ws, newestWindowStart: ws });
    else {
      c.oldestWindowStart = Math.min(c.oldestWindowStart, ws);
      c.newestWindowStart = Math.max(c.newestWindowStart, ws);
    }
  }
  return [...byStream.values()];
}
