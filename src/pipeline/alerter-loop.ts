import type { Logger } from '../runtime/logger';
import type { Alerter } from './alerter';
import type { PushLeadership } from './push-loop';

/**
 * Runs the alerter on the same one-process rule as the pusher (PushLeadership: the owner of
 * partition 0, after a grace period), so two workers never decide the same crossing at once.
 * Each term begins with Alerter.startTerm (pending alerts settled, a full check of the current
 * period), then a cycle every `intervalMs` while the process keeps the role.
 */
export function startAlerterLoop(alerter: Alerter, logger: Logger, intervalMs: number, leadership?: PushLeadership): { stop(): Promise<void> } {
  const log = logger.child({ module: 'alerter' });
  const clock = leadership?.clock ?? Date.now;
  let leaderSince: number | null = null;
  let termStarted = false;

  const step = async () => {
    if (leadership && !leadership.isLeader()) {
      if (leaderSince !== null) log.info('no longer the alerter (partition 0 moved to another worker)');
      leaderSince = null;
      termStarted = false;
      return;
    }
    if (leadership) {
      leaderSince ??= clock();
      if (clock() - leaderSince < leadership.graceMs) return;
    }
    if (!termStarted) {
      await alerter.startTerm();
      termStarted = true;
      return;
    }
    await alerter.cycle();
  };

  let running = true;
  let current: Promise<unknown> = Promise.resolve();
  const done = (async () => {
    while (running) {
      current = step().catch((err) => log.error({ err }, 'alert check failed; retrying next cycle'));
      await current;
      if (running) await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await current;
      await done;
    },
  };
}
