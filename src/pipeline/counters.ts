import { advanceState, counterFrom, type CounterRow, type WindowKey } from '../domain/counters';
import type { CounterStore, SettleCursor } from '../adapters/clickhouse/counter-store';

/**
 * Recomputes the counters of `keys` from the deduplicated ledger and writes them. Re-running it
 * for the same keys writes the same rows (same version), so it is safe after any crash.
 *
 * Rows are stamped (updated_at) right before their INSERT, never before the read: the pusher
 * finds changed counters by that stamp, allowing for an INSERT's duration, not a whole query's.
 */
export async function refreshCounters(store: CounterStore, keys: readonly WindowKey[], watermark: number | null, clock: () => number): Promise<CounterRow[]> {
  if (keys.length === 0) return [];
  const rows = (await store.aggregate(keys)).map((a) => counterFrom(a, watermark));
  await store.write(rows, clock());
  return rows;
}

/** Moves counters to closed / final as the watermark passes their end (plus allowed lateness). */
export async function settleCounters(store: CounterStore, watermark: number | null, clock: () => number, since?: SettleCursor): Promise<CounterRow[]> {
  if (watermark === null) return [];
  const moved = (await store.unsettled(watermark, since)).flatMap((row) => advanceState(row, watermark) ?? []);
  await store.write(moved, clock());
  return moved;
}

/** Rows written this long before a settle pass read may become visible only after it read. */
export const SETTLE_OVERLAP_MS = 30_000;

/**
 * Repeated settle passes that each look only at what the previous one left: windows not yet
 * final-eligible at its watermark, and rows written since it read (a replay's, a late event's).
 * The first pass, and one every `fullEveryMs`, looks at every counter: a safety net.
 */
export function createSettler(store: CounterStore, clock: () => number, fullEveryMs = 300_000) {
  let last: SettleCursor | null = null;
  let lastFull = -Infinity;
  return async (watermark: number | null): Promise<CounterRow[]> => {
    if (watermark === null) return [];
    const readAt = clock();
    const full = last === null || readAt - lastFull >= fullEveryMs;
    const moved = await settleCounters(store, watermark, clock, full ? undefined : last!);
    // Only a pass that completed moves the cursor.
    last = { watermark, updatedAt: readAt - SETTLE_OVERLAP_MS };
    if (full) lastFull = readAt;
    return moved;
  };
}
