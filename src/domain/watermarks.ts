/**
 * Per-partition event-time watermarks. A partition's watermark is the highest event time seen
 * in it minus the bounded out-of-orderness; the worker's watermark is the minimum over the
 * partitions it owns, so a partition read ahead of another (a backlog, a replay) never makes
 * the other's events look late. A partition that has delivered nothing for `idleTimeoutMs`
 * stops holding the minimum back. Pure: state in, state out, time passed in.
 */
export interface PartitionClock {
  /** Highest event time seen (ms); null before the first event. */
  readonly maxEventTime: number | null;
  /** Wall-clock time of the last message (or of the assignment). */
  readonly lastActivityAt: number;
}

export type WatermarkState = ReadonlyMap<number, PartitionClock>;

export interface WatermarkOptions {
  readonly outOfOrdernessMs: number;
  readonly idleTimeoutMs: number;
}

/** Partitions assigned to this worker: kept ones keep their clocks, new ones start from `restored`. */
export function assign(state: WatermarkState, partitions: readonly number[], now: number, restored: ReadonlyMap<number, number> = new Map()): WatermarkState {
  const next = new Map<number, PartitionClock>();
  for (const p of partitions) next.set(p, state.get(p) ?? { maxEventTime: restored.get(p) ?? null, lastActivityAt: now });
  return next;
}

/** A batch from `partition` whose highest event time is `maxEventTime` was read at `now`. */
export function observe(state: WatermarkState, partition: number, maxEventTime: number | null, now: number): WatermarkState {
  const prev = state.get(partition);
  const next = new Map(state);
  const max = prev?.maxEventTime == null ? maxEventTime : maxEventTime == null ? prev.maxEventTime : Math.max(prev.maxEventTime, maxEventTime);
  next.set(partition, { maxEventTime: max, lastActivityAt: now });
  return next;
}

/**
 * The worker's watermark, or null when nothing can be said yet (an active partition has no
 * event time): then no event is late. Idle partitions are skipped; if every partition is
 * idle, the most advanced one speaks (event time does not move without events).
 */
export function currentWatermark(state: WatermarkState, now: number, opts: WatermarkOptions): number | null {
  let min: number | null = null;
  let anyActive = false;
  let maxOfAll: number | null = null;
  for (const clock of state.values()) {
    const wm = clock.maxEventTime === null ? null : clock.maxEventTime - opts.outOfOrdernessMs;
    if (wm !== null) maxOfAll = maxOfAll === null ? wm : Math.max(maxOfAll, wm);
    if (now - clock.lastActivityAt > opts.idleTimeoutMs) continue;
    anyActive = true;
    if (wm === null) return null;
    min = min === null ? wm : Math.min(min, wm);
  }
  return anyActive ? min : maxOfAll;
}
