/**
 * How often the push loop plans, given the ingest backlog of the worker it runs in.
 *
 * While a worker is far behind its partitions (a replay, a restart after downtime, a burst), every
 * total a push cycle reads is superseded seconds later, and the cycle's reads compete with ingest
 * for the same ClickHouse and the same cores: in the benchmark's 1,000,000-event backlog a cycle
 * every second cost ingest about a third of its rate. So beyond `BACKLOG_EVENTS` waiting, cycles
 * are spaced `BACKLOG_INTERVAL_MS` apart: fewer, larger pushes of the same exact totals (nothing is
 * lost or counted twice — a push carries the total it read), and the backlog clears sooner.
 * Once it is under the threshold, cycles come every `INTERVAL_MS` again (the loop re-reads the
 * pace every tick, so a cleared backlog is pushed within a second).
 */
export const PUSH_PACE = {
  INTERVAL_MS: 1_000,
  BACKLOG_INTERVAL_MS: 10_000,
  /** Two full ingest units (see pipeline/ingest-units.ts): more than the worker can hold in flight. */
  BACKLOG_EVENTS: 50_000,
  /**
   * The share of the loop's time its cycles may take. A cycle's reads (the changed streams'
   * totals) run on the ClickHouse and the cores ingest writes with, and with tens of thousands
   * of streams changing they take seconds: back to back, they held ingest's latency at 20,000
   * events/s offered to 3–7 s instead of 0.4–1 s (BENCHMARKS.md). Resting 3× a cycle's length
   * bounds that; a cycle of a few milliseconds (the usual case) still comes every INTERVAL_MS.
   */
  MAX_CYCLE_SHARE: 0.25,
} as const;

/** Milliseconds between push cycles for `backlogEvents` waiting on this worker's partitions. */
export function pushIntervalMs(backlogEvents: number): number {
  return backlogEvents > PUSH_PACE.BACKLOG_EVENTS ? PUSH_PACE.BACKLOG_INTERVAL_MS : PUSH_PACE.INTERVAL_MS;
}

/** Milliseconds to rest after a cycle that took `cycleMs`, so that cycles take at most MAX_CYCLE_SHARE of the time. */
export function restAfterCycleMs(cycleMs: number): number {
  const share = PUSH_PACE.MAX_CYCLE_SHARE;
  return Math.ceil((Math.max(0, cycleMs) * (1 - share)) / share);
}
