import { PUSH_PACE, pushIntervalMs, restAfterCycleMs } from '../../src/domain/push-pace';
import { startPushLoop } from '../../src/pipeline/push-loop';
import type { Pusher } from '../../src/pipeline/pusher';
import { silentLogger } from '../../src/runtime/logger';

describe('push pace (cycles spaced out while ingest is far behind)', () => {
  it.each([
    [0, PUSH_PACE.INTERVAL_MS],
    [PUSH_PACE.BACKLOG_EVENTS, PUSH_PACE.INTERVAL_MS],
    [PUSH_PACE.BACKLOG_EVENTS + 1, PUSH_PACE.BACKLOG_INTERVAL_MS],
    [10_000_000, PUSH_PACE.BACKLOG_INTERVAL_MS],
  ])('%i events waiting: a cycle every %i ms', (backlog, interval) => {
    expect(pushIntervalMs(backlog)).toBe(interval);
  });

  it('the loop waits the pace after a cycle, and resumes within a tick once the backlog clears', async () => {
    const cycles: number[] = [];
    const pusher = {
      resendPending: async () => ({ resent: 0, held: 0 }),
      cycle: async () => (cycles.push(Date.now()), { started: 0, awaitingMapping: 0, tooOld: 0, deferred: 0 }),
      resign: () => undefined,
      stop: async () => undefined,
    } as unknown as Pusher;
    let backlog = 0;
    const tick = 10;
    // A pace of 10 s while behind; the tick (the usual interval) is 10 ms here.
    const loop = await startPushLoop(pusher, silentLogger(), tick, undefined, () => (backlog > 100 ? 10_000 : tick));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(100);
    expect(cycles.length).toBeGreaterThan(3); // caught up: a cycle every tick
    backlog = 1_000;
    await sleep(50); // the cycle under way when the backlog appeared, perhaps one more
    const behind = cycles.length;
    await sleep(300);
    expect(cycles.length).toBe(behind); // far behind: no cycle for the 10 s pace
    backlog = 0;
    const cleared = Date.now();
    while (cycles.length === behind && Date.now() - cleared < 2_000) await sleep(5);
    expect(cycles.length).toBeGreaterThan(behind);
    expect(cycles[behind]! - cleared).toBeLessThan(500); // within a tick or so, not after the 10 s
    await loop.stop();
  });

  it.each([
    [0, 0],
    [4, 12],
    [1_000, 3_000],
    [3_400, 10_200],
  ])('a cycle of %i ms rests %i ms after it: cycles take at most a quarter of the time', (cycleMs, rest) => {
    expect(PUSH_PACE.MAX_CYCLE_SHARE).toBe(0.25);
    expect(restAfterCycleMs(cycleMs)).toBe(rest);
  });

  it('the loop rests three times a long cycle before the next, and keeps its tick after short ones', async () => {
    const starts: number[] = [];
    let cycleMs = 0;
    const pusher = {
      resendPending: async () => ({ resent: 0, held: 0 }),
      cycle: async () => {
        starts.push(performance.now());
        await new Promise((r) => setTimeout(r, cycleMs));
        return { started: 0, awaitingMapping: 0, tooOld: 0, deferred: 0 };
      },
      resign: () => undefined,
      stop: async () => undefined,
    } as unknown as Pusher;
    const tick = 10;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const loop = await startPushLoop(pusher, silentLogger(), tick);
    await sleep(100);
    expect(starts.length).toBeGreaterThan(3); // short cycles: one every tick
    cycleMs = 100;
    const n = starts.length;
    while (starts.length < n + 3) await sleep(10);
    await loop.stop();
    // From the first slow cycle on: a start every cycle + rest (100 + 300 ms) at least.
    const gaps = starts.slice(n, n + 3).map((t, i, a) => (i === 0 ? null : t - a[i - 1]!)).filter((g): g is number => g !== null);
    for (const g of gaps) expect(g).toBeGreaterThanOrEqual(100 + restAfterCycleMs(100) - 5);
  }, 10_000);
});
