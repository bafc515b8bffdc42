import { restAfterCycleMs } from '../domain/push-pace';
import type { Logger } from '../runtime/logger';
import type { Pusher } from './pusher';

/**
 * Which process pushes, when several workers share a consumer group: the one that owns the
 * topic's partition 0. Pushes are planned from shared tables (totals and the push ledger), so
 * two pushers planning one stream at the same moment could send two different deltas under two
 * different identifiers — billing twice. One pusher at a time rules that out, and keeps the
 * global Stripe rate limit one process's to spend.
 *
 * A process becoming the pusher waits `graceMs` first: its predecessor (which gave the role up
 * when the rebalance began, before this process could be assigned the partition) may still be
 * recording a push it had planned; after the grace that push is in the ledger as pending, and
 * the new pusher resends every pending push (same identifier, so at most one delivery) before
 * planning anything new — including those a killed predecessor left behind.
 */
export interface PushLeadership {
  isLeader(): boolean;
  readonly graceMs: number;
  readonly clock?: () => number;
}

/**
 * Runs the pusher: pending pushes first, then a cycle every `intervalMs` until stopped. With
 * `pace`, the wait after a cycle is what it returns (at least `intervalMs`), read again every
 * `intervalMs` while waiting. A long cycle is followed by a rest three times its length, so
 * that cycles take at most a quarter of the time: see domain/push-pace.ts.
 */
export async function startPushLoop(
  pusher: Pusher,
  logger: Logger,
  intervalMs = 1000,
  leadership?: PushLeadership,
  pace?: () => number,
): Promise<{ stop(): Promise<void> }> {
  const log = logger.child({ module: 'pusher' });
  const clock = leadership?.clock ?? Date.now;
  let lastPace = intervalMs;
  const paceMs = () => {
    const ms = Math.max(intervalMs, pace?.() ?? intervalMs);
    if (ms !== lastPace) log.info({ cycleEveryMs: ms }, ms > intervalMs ? 'ingest is far behind: push cycles spaced out until it catches up' : 'ingest caught up: push cycles at their usual pace');
    lastPace = ms;
    return ms;
  };
  const resendPending = async () => {
    const resent = await pusher.resendPending();
    if (resent.resent + resent.held > 0) log.info(resent, 'pending pushes left by a previous pusher handled');
  };
  if (!leadership) await resendPending();
  let leaderSince: number | null = null;
  let resentThisTerm = false;
  /** Whether this process may push now (always, without leadership). */
  const mayPush = async () => {
    if (!leadership) return true;
    if (!leadership.isLeader()) {
      if (leaderSince !== null) {
        log.info('no longer the pusher (partition 0 moved to another worker)');
        pusher.resign();
      }
      leaderSince = null;
      resentThisTerm = false;
      return false;
    }
    if (leaderSince === null) {
      leaderSince = clock();
      log.info({ graceMs: leadership.graceMs }, 'this worker owns partition 0: it becomes the pusher after a grace period');
    }
    if (clock() - leaderSince < leadership.graceMs) return false;
    if (!resentThisTerm) {
      await resendPending();
      resentThisTerm = true;
    }
    return true;
  };
  let running = true;
  let current: Promise<unknown> = Promise.resolve();
  const loop = async () => {
    while (running) {
      const cycleStart = performance.now();
      current = mayPush()
        .then((may) => (may ? pusher.cycle() : undefined))
        .catch((err) => log.error({ err }, 'push cycle failed; retrying next cycle'));
      await current;
      const rest = restAfterCycleMs(performance.now() - cycleStart);
      // Ticks of intervalMs, counted (not timed: no clock to disagree with the timers), until
      // the pace and the rest are reached; for a short cycle without a pace, exactly one.
      let waitedMs = 0;
      do {
        await new Promise((r) => setTimeout(r, intervalMs));
        waitedMs += intervalMs;
      } while (running && (waitedMs < paceMs() || waitedMs < rest));
    }
  };
  const done = loop();
  return {
    async stop() {
      running = false;
      await current;
      await pusher.stop();
      await done;
    },
  };
}
