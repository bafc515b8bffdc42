import { streamKey } from './keys';
import type { StreamKey } from './push-plan';

/**
 * Which streams a push cycle plans. Planning reads totals and the push ledger; reading them for
 * every stream every second would cost more than all the rest of the pipeline once history
 * grows. So a cycle plans every stream (a full scan) at the start of a term, after anything went
 * wrong and every `fullScanEveryMs`; otherwise only the streams whose usage (or customer mapping)
 * changed since the previous cycle began reading, plus those an earlier cycle deferred (a push
 * in flight or pending, or more due than `maxInFlight` allows).
 *
 * Pure: state in, decision and next state out; time and the pusher's in-flight state are passed in.
 */

/**
 * A cycle looks for changes recorded since this long before the previous cycle began reading:
 * a change row is stamped just before its INSERT, which may become visible a little later
 * (and several workers' clocks differ a little). Re-planning an unchanged stream is harmless.
 */
export const CHANGE_OVERLAP_MS = 30_000;

/** A stream due a look, from its oldest changed window on. */
export interface DueStream extends StreamKey {
  readonly oldestWindowStart: number;
  /** The newest window that changed (absent: unknown, e.g. a stream re-planned for another reason). */
  readonly newestWindowStart?: number;
}

export interface ScheduleState {
  /** When the last completed cycle that read changes began reading (the change cursor, ms). */
  readonly lastRead: number;
  /** When the last completed full scan began reading (ms). */
  readonly lastFullScan: number;
  /** The next cycle is a full scan that forgets what was kept in memory: a new term, or a failure. */
  readonly rescan: boolean;
  /** Streams due that earlier cycles did not plan, by stream key: the next cycle plans them first. */
  readonly deferred: ReadonlyMap<string, DueStream>;
}

export interface ScheduleLimits {
  readonly fullScanEveryMs: number;
  readonly maxInFlight: number;
}

export const initialSchedule = (): ScheduleState => ({ lastRead: 0, lastFullScan: -Infinity, rescan: true, deferred: new Map() });

/** What a cycle reads, decided when it begins. */
export interface CycleStart {
  /** When the cycle began reading: the cursor it leaves if it completes. */
  readonly readStart: number;
  /** Every stream is planned (scope unlimited); the push ledger and every mapping are read again. */
  readonly full: boolean;
  /** Totals kept in memory are dropped first: the whole history is read once more. */
  readonly forget: boolean;
  /**
   * The change record (and changed mappings) are read. Not when the deferred streams alone fill
   * the in-flight budget: the cursor then stays put, so later changes are seen later, never missed.
   */
  readonly readChanges: boolean;
  /** Changes are read from this instant on (the cursor minus CHANGE_OVERLAP_MS). */
  readonly changesSince: number;
}

/** Begins a cycle at `now` with `inFlight` pushes under way. The rescan request is consumed: a failure from now on sets it again. */
export function startCycle(state: ScheduleState, now: number, inFlight: number, limits: ScheduleLimits): { start: CycleStart; state: ScheduleState } {
  const full = state.rescan || now - state.lastFullScan >= limits.fullScanEveryMs;
  const start: CycleStart = {
    readStart: now,
    full,
    forget: state.rescan,
    readChanges: full || state.deferred.size < limits.maxInFlight - inFlight,
    changesSince: state.lastRead - CHANGE_OVERLAP_MS,
  };
  return { start, state: { ...state, rescan: false } };
}

/** Adds `stream` to `due`, keeping the older window where the stream is there already (mutates `due`: an accumulator the caller owns). */
export function addDue(due: Map<string, DueStream>, key: string, stream: DueStream): void {
  const known = due.get(key);
  if (!known || stream.oldestWindowStart < known.oldestWindowStart) due.set(key, stream);
}

/**
 * A scoped cycle's streams: those deferred earlier first (they have waited longest), then those
 * changed. A stream whose push is in flight or pending (`busy`), or beyond the in-flight budget,
 * is deferred again.
 */
export function scopeCycle(
  deferredBefore: ReadonlyMap<string, DueStream>,
  changed: readonly DueStream[],
  busy: (key: string) => boolean,
  inFlight: number,
  maxInFlight: number,
): { scope: DueStream[]; deferred: Map<string, DueStream> } {
  const due = new Map(deferredBefore);
  for (const c of changed) addDue(due, streamKey(c), c);
  const scope: DueStream[] = [];
  const deferred = new Map<string, DueStream>();
  for (const [key, c] of due) {
    if (busy(key) || inFlight + scope.length >= maxInFlight) addDue(deferred, key, c);
    else scope.push(c);
  }
  return { scope, deferred };
}

/** Absolute streams are recomputed per billing period from this instant on: the oldest changed window in scope (0: all). */
export function oldestInScope(scope: readonly DueStream[] | undefined): number {
  return scope ? scope.reduce((min, c) => Math.min(min, c.oldestWindowStart), Infinity) : 0;
}

/** Whether a planned push starts now; if not, it is deferred and planned again later from its newer total. */
export function mayLaunch(streamInFlight: boolean, inFlight: number, maxInFlight: number): boolean {
  return !streamInFlight && inFlight < maxInFlight;
}

/**
 * Ends a cycle. The cursors move only when it completed (a cycle cut short, e.g. by losing the
 * pusher role, rescans next); the streams it deferred are the next cycle's first.
 */
export function finishCycle(state: ScheduleState, start: CycleStart, completed: boolean, deferred: ReadonlyMap<string, DueStream>): ScheduleState {
  return {
    lastRead: completed && start.readChanges ? start.readStart : state.lastRead,
    lastFullScan: completed && start.full ? start.readStart : state.lastFullScan,
    rescan: state.rescan || !completed,
    deferred,
  };
}

/** Something went wrong (or a term began): the next cycle is a full scan that forgets. */
export function requestRescan(state: ScheduleState): ScheduleState {
  return { ...state, rescan: true };
}
