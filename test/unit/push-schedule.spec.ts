import {
  addDue,
  CHANGE_OVERLAP_MS,
  finishCycle,
  initialSchedule,
  mayLaunch,
  oldestInScope,
  requestRescan,
  scopeCycle,
  startCycle,
  type CycleStart,
  type DueStream,
  type ScheduleState,
} from '../../src/domain/push-schedule';
import { streamKey } from '../../src/domain/keys';

const MIN = 60_000;
const limits = { fullScanEveryMs: 5 * MIN, maxInFlight: 3 };
const stream = (customer: string, oldestWindowStart = 0, extra: Partial<DueStream> = {}): DueStream => ({ tenant: 't', customer, meter: 'm', oldestWindowStart, ...extra });
const byKey = (...streams: DueStream[]) => new Map(streams.map((s) => [streamKey(s), s]));
const state = (s: Partial<ScheduleState> = {}): ScheduleState => ({ lastRead: 100 * MIN, lastFullScan: 99 * MIN, rescan: false, deferred: new Map(), ...s });
const customers = (streams: Iterable<DueStream>) => [...streams].map((s) => s.customer);

describe('push schedule: what a cycle reads', () => {
  const now = 101 * MIN;
  it.each<[string, ScheduleState, number, Partial<CycleStart>]>([
    ['the first cycle of a term is a full scan that forgets what was kept', initialSchedule(), 0, { full: true, forget: true, readChanges: true }],
    ['a cycle after a failure is a full scan that forgets', state({ rescan: true }), 0, { full: true, forget: true, readChanges: true }],
    ['a cycle fullScanEveryMs after the last full scan is a full scan that keeps what it knows', state({ lastFullScan: now - 5 * MIN }), 0, { full: true, forget: false }],
    ['a cycle sooner than that plans changed streams only', state({ lastFullScan: now - 5 * MIN + 1 }), 0, { full: false, forget: false, readChanges: true }],
    ['changes are read from the previous read minus the overlap', state({ lastRead: 100 * MIN }), 0, { changesSince: 100 * MIN - CHANGE_OVERLAP_MS, readStart: now }],
    ['deferred streams that fill the in-flight budget: no changes are read', state({ deferred: byKey(stream('a'), stream('b')) }), 1, { full: false, readChanges: false }],
    ['deferred streams below the budget: changes are read', state({ deferred: byKey(stream('a'), stream('b')) }), 0, { full: false, readChanges: true }],
    ['a full scan reads changes whatever is deferred', state({ rescan: true, deferred: byKey(stream('a'), stream('b'), stream('c')) }), 3, { full: true, readChanges: true }],
  ])('%s', (_rule, before, inFlight, expected) => {
    const { start } = startCycle(before, now, inFlight, limits);
    expect(start).toMatchObject(expected);
  });

  it('consumes the rescan request and leaves the cursors and deferred streams as they were', () => {
    const before = state({ rescan: true, deferred: byKey(stream('a')) });
    const { state: after } = startCycle(before, now, 0, limits);
    expect(after).toEqual({ ...before, rescan: false });
  });
});

describe('push schedule: which streams a scoped cycle plans', () => {
  const none = () => false;
  it.each<[string, Map<string, DueStream>, DueStream[], (key: string) => boolean, number, string[], string[]]>([
    ['every changed stream, within the budget', new Map(), [stream('a'), stream('b')], none, 0, ['a', 'b'], []],
    ['streams deferred earlier come first', byKey(stream('old')), [stream('a'), stream('b'), stream('c')], none, 0, ['old', 'a', 'b'], ['c']],
    ['a stream with a push in flight or pending is deferred', new Map(), [stream('a'), stream('busy'), stream('b')], (k) => k.includes('busy'), 0, ['a', 'b'], ['busy']],
    ['pushes in flight use up the budget', new Map(), [stream('a'), stream('b'), stream('c')], none, 2, ['a'], ['b', 'c']],
    ['nothing when the budget is used up: all stay deferred', byKey(stream('old')), [stream('a')], none, 3, [], ['old', 'a']],
  ])('%s', (_rule, deferredBefore, changed, busy, inFlight, planned, deferred) => {
    const result = scopeCycle(deferredBefore, changed, busy, inFlight, limits.maxInFlight);
    expect(customers(result.scope)).toEqual(planned);
    expect(customers(result.deferred.values())).toEqual(deferred);
  });

  it('a stream both deferred and changed is planned once, from its older window', () => {
    const { scope } = scopeCycle(byKey(stream('a', 5 * MIN)), [stream('a', 2 * MIN, { newestWindowStart: 9 * MIN }), stream('b', 7 * MIN)], () => false, 0, 10);
    expect(scope).toEqual([stream('a', 2 * MIN, { newestWindowStart: 9 * MIN }), stream('b', 7 * MIN)]);
    expect(oldestInScope(scope)).toBe(2 * MIN);
  });

  it('deferring a stream twice keeps its older window', () => {
    const due = new Map<string, DueStream>();
    addDue(due, 'k', stream('a', 4 * MIN));
    addDue(due, 'k', stream('a', 6 * MIN));
    addDue(due, 'k', stream('a', 3 * MIN));
    expect(due.get('k')!.oldestWindowStart).toBe(3 * MIN);
  });

  it('absolute periods are read from the oldest changed window, or all of them in a full scan', () => {
    expect(oldestInScope([stream('a', 7), stream('b', 3), stream('c', 5)])).toBe(3);
    expect(oldestInScope(undefined)).toBe(0);
  });

  it.each<[string, boolean, number, boolean]>([
    ['a planned push starts when its stream is idle and the budget allows', false, 2, true],
    ['not while another push of its stream is in flight', true, 0, false],
    ['not beyond the in-flight budget', false, 3, false],
  ])('%s', (_rule, streamInFlight, inFlight, expected) => {
    expect(mayLaunch(streamInFlight, inFlight, limits.maxInFlight)).toBe(expected);
  });
});

describe('push schedule: the cursors move only when a cycle completes', () => {
  const readStart = 101 * MIN;
  const startOf = (s: Partial<CycleStart>): CycleStart => ({ readStart, full: false, forget: false, readChanges: true, changesSince: 0, ...s });
  const deferred = byKey(stream('later'));
  it.each<[string, ScheduleState, CycleStart, boolean, Partial<ScheduleState>]>([
    ['a completed cycle that read changes moves the change cursor', state(), startOf({}), true, { lastRead: readStart, lastFullScan: 99 * MIN, rescan: false }],
    ['one that did not read changes leaves it (later changes are seen later, never missed)', state(), startOf({ readChanges: false }), true, { lastRead: 100 * MIN }],
    ['a completed full scan moves both', state(), startOf({ full: true }), true, { lastRead: readStart, lastFullScan: readStart }],
    ['a cycle cut short moves neither and rescans next', state(), startOf({ full: true }), false, { lastRead: 100 * MIN, lastFullScan: 99 * MIN, rescan: true }],
    ['a failure during the cycle (a delivery stopped) still rescans next', state({ rescan: true }), startOf({}), true, { lastRead: readStart, rescan: true }],
  ])('%s', (_rule, before, start, completed, expected) => {
    const after = finishCycle(before, start, completed, deferred);
    expect(after).toMatchObject(expected);
    expect(after.deferred).toBe(deferred);
  });

  it('a failure makes the next cycle a full scan that forgets', () => {
    const { start } = startCycle(requestRescan(state({ lastFullScan: 101 * MIN })), 101 * MIN, 0, limits);
    expect(start).toMatchObject({ full: true, forget: true });
  });

  it('over cycles: a change seen while the budget was full is read once the deferred streams drain', () => {
    // Cycle 1 (t=101 min) defers enough streams to fill the budget; cycle 2 must not read changes,
    // so the cursor stays at cycle 1's read; cycle 3, with room again, reads from there.
    let s = state();
    const c1 = startCycle(s, 101 * MIN, 0, limits);
    s = finishCycle(c1.state, c1.start, true, byKey(stream('a'), stream('b'), stream('c')));
    const c2 = startCycle(s, 102 * MIN, 0, limits);
    expect(c2.start.readChanges).toBe(false);
    s = finishCycle(c2.state, c2.start, true, byKey(stream('a')));
    expect(s.lastRead).toBe(101 * MIN);
    const c3 = startCycle(s, 103 * MIN, 0, limits);
    expect(c3.start).toMatchObject({ readChanges: true, changesSince: 101 * MIN - CHANGE_OVERLAP_MS });
  });
});
