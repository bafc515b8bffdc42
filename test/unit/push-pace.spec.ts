import { PUSH_PACE, pushIntervalMs } from '../../src/domain/push-pace';
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
      cycle: async () => (cycles.push(Date.now()), { started: 0, awaitingMapping: 0, tooOld: 0 }),
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
});
