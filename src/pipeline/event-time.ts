import type { Clock } from '../ports/clock';
import type { WatermarkStore } from '../ports/watermarks';
import { assign, currentWatermark, observe, type WatermarkOptions, type WatermarkState } from '../domain/watermarks';
import type { Metrics } from '../runtime/metrics';

/**
 * A worker's event time: per-partition clocks (domain/watermarks.ts) kept as units commit, and
 * persisted for restarts and for readers of window states. Partition maxima survive restarts;
 * a rebalance keeps the clocks of partitions the worker still owns.
 */
export function createEventTime(opts: { store?: WatermarkStore; topic: string; clock: Clock; watermarks: WatermarkOptions; metrics?: Metrics }) {
  const { store, clock } = opts;
  let restored = new Map<number, number>();
  let clocks: WatermarkState = new Map();
  // Partitions whose highest event time moved since the last save, and the watermark last saved.
  const unsaved = new Set<number>();
  let savedWatermark: number | null = null;
  let saving: Promise<void> = Promise.resolve();
  const watermark = () => currentWatermark(clocks, clock(), opts.watermarks);
  return {
    watermark,
    async restore(): Promise<void> {
      if (store) restored = await store.loadPartitionMaxima(opts.topic);
    },
    assigned(partitions: readonly number[]): void {
      clocks = assign(clocks, partitions, clock(), restored);
    },
    /** A committed batch of `partition` whose newest event time was `max` (null: no valid event). */
    observe(partition: number, max: number | null): void {
      clocks = observe(clocks, partition, max, clock());
      if (store && max !== null) {
        restored.set(partition, Math.max(max, restored.get(partition) ?? -Infinity));
        unsaved.add(partition);
      }
    },
    /**
     * Saves what moved (partition maxima, the watermark); one save at a time. A failed save
     * leaves its partitions unsaved, so the next one carries them again (else a partition that
     * delivers nothing more would restart from an older maximum, or from none: no watermark, and
     * no event too late); and it does not stop later saves, which only wait for it to end.
     */
    save(): Promise<void> {
      const next = saving.then(async () => {
        const wm = watermark();
        if (wm !== null) opts.metrics?.watermarkDelay.set((clock() - wm) / 1000);
        if (!store || (unsaved.size === 0 && wm === savedWatermark)) return;
        const partitions = [...unsaved];
        unsaved.clear();
        try {
          await store.save(opts.topic, new Map(partitions.map((p) => [p, restored.get(p)!])), wm, clock());
        } catch (err) {
          for (const p of partitions) unsaved.add(p);
          throw err;
        }
        savedWatermark = wm;
      });
      saving = next.catch(() => undefined);
      return next;
    },
  };
}

export type EventTime = ReturnType<typeof createEventTime>;
