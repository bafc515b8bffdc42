import { advanceState, counterFrom, type CounterRow, type WindowKey } from '../domain/counters';
import type { CounterStore } from '../adapters/clickhouse/counter-store';

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
export async function settleCounters(store: CounterStore, watermark: number | null, clock: () => number): Promise<CounterRow[]> {
  if (watermark === null) return [];
  const moved = (await store.unsettled(watermark)).flatMap((row) => advanceState(row, watermark) ?? []);
  await store.write(moved, clock());
  return moved;
}
