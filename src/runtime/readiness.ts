/**
 * Readiness, decided purely from what the worker observed (no I/O here; health-monitor.ts feeds it).
 *
 * A worker is ready when it can do its job right now: Kafka and ClickHouse answer, the consumer
 * runs and owns partitions, and none of its partitions is stalled. A partition is *stalled*
 * when it has messages waiting (lag > 0) and has made no progress — no batch of it committed,
 * its lag never went down — for `stallMs`. Lag is read from the broker independently of the
 * consume loop, so a consumer that silently stopped (a hung batch, a dead fetch loop) still shows
 * growing lag and turns not ready, instead of staying green while billing falls behind.
 */

export interface PartitionProgress {
  /** Messages behind the partition's end at the last observation. */
  readonly lag: number;
  /** Last time (ms) the partition made progress, or was first seen. */
  readonly progressAt: number;
}

/** Per owned partition. Partitions no longer owned are dropped. */
export type ProgressState = ReadonlyMap<number, PartitionProgress>;

export const initialProgress = (): ProgressState => new Map();

/**
 * A lag sample from the broker for the partitions currently owned. Progress: the lag went down
 * or is zero (nothing to do is never a stall). A newly owned partition starts its clock now.
 */
export function observeLag(state: ProgressState, lags: ReadonlyMap<number, number>, now: number): ProgressState {
  const next = new Map<number, PartitionProgress>();
  for (const [partition, lag] of lags) {
    const prev = state.get(partition);
    const progressed = prev === undefined || lag === 0 || lag < prev.lag;
    next.set(partition, { lag, progressAt: progressed ? now : prev.progressAt });
  }
  return next;
}

/** A batch of `partition` was stored and committed: progress, whatever the lag. */
export function observeBatch(state: ProgressState, partition: number, lag: number, now: number): ProgressState {
  return new Map(state).set(partition, { lag, progressAt: now });
}

/** Owned partitions with messages waiting and no progress for at least `stallMs`. */
export function stalledPartitions(state: ProgressState, now: number, stallMs: number): number[] {
  const stalled: number[] = [];
  for (const [partition, p] of state) if (p.lag > 0 && now - p.progressAt >= stallMs) stalled.push(partition);
  return stalled.sort((a, b) => a - b);
}

export interface ReadinessInput {
  /** The last broker poll succeeded and the consumer is connected. */
  readonly kafkaReachable: boolean;
  /** The last ClickHouse ping succeeded. */
  readonly clickhouseReachable: boolean;
  /** The consumer is running (false once it crashed and was not restarted). */
  readonly consuming: boolean;
  readonly assignedPartitions: number;
  readonly stalled: readonly number[];
}

export interface Readiness {
  readonly ready: boolean;
  /** Why not ready (empty when ready), for /health/ready and logs. */
  readonly reasons: readonly string[];
}

export function decideReadiness(input: ReadinessInput): Readiness {
  const reasons: string[] = [];
  if (!input.kafkaReachable) reasons.push('kafka unreachable');
  if (!input.clickhouseReachable) reasons.push('clickhouse unreachable');
  if (!input.consuming) reasons.push('consumer not running');
  else if (input.assignedPartitions === 0) reasons.push('no partitions assigned');
  if (input.stalled.length > 0) reasons.push(`consumption stalled on partition(s) ${input.stalled.join(', ')}`);
  return { ready: reasons.length === 0, reasons };
}

/** Lag of one partition: its end minus the next offset to read (the committed offset, or its start if none). */
export function partitionLag(high: string, low: string, committed: string | null): number {
  const end = BigInt(high);
  const start = committed !== null && BigInt(committed) >= 0n ? BigInt(committed) : BigInt(low);
  const lag = end - start;
  return lag > 0n ? Number(lag) : 0;
}
