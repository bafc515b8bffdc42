import type { PushRecord, PushStore } from '../adapters/clickhouse/push-store';
import type { BillingSink, SendOutcome } from '../ports/billing-sink';
import { pendingDecision, pendingStats, type PendingPush } from '../domain/pending-resend';
import { streamKey } from '../domain/keys';
import type { PlannedPush } from '../domain/push-plan';
import { MeterlineError } from '../runtime/errors';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { backoffDelay, realSleep, retry } from '../runtime/retry';

interface PendingEntry extends PendingPush {
  readonly push: PlannedPush;
}

export interface DeliveryDeps {
  readonly pushes: PushStore;
  readonly sink: BillingSink;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Grants one call to Stripe (global rate limit); resolves with the wait in ms. */
  readonly rateLimit: () => Promise<number>;
  readonly maxAttempts: number;
  readonly maxInFlight: number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly active: () => boolean;
  /** A delivery stopped on an error: what the ledger holds for its push is uncertain now. */
  readonly onUncertain: () => void;
}

/** A 'retry' outcome as the retrier sees it; it carries the outcome to finish with if attempts run out. */
class RetryOutcome extends MeterlineError {
  constructor(readonly outcome: Extract<SendOutcome, { kind: 'retry' }>) {
    super('push_retry', outcome.reason, { retriable: true });
  }
}

/**
 * Delivers recorded pushes, one at a time per stream: sends until delivered, failed for good, or
 * out of attempts (then it stays pending, and is resent when due: see pending-resend.ts). Every
 * attempt is written to the push ledger before the next one.
 */
export function createDelivery(deps: DeliveryDeps) {
  const log = deps.logger.child({ module: 'pusher' });
  const sleep = deps.sleep ?? realSleep;
  const inFlight = new Map<string, Promise<void>>();
  /** The push each in-flight stream is delivering. */
  const delivering = new Map<string, PlannedPush>();
  /** Pushes left pending (by this process's retries, or found in the ledger), by stream; their streams wait until resent. */
  let pending = new Map<string, PendingEntry>();
  let stopping = false;

  const finish = async (push: PlannedPush, createdAt: number, attempts: number, outcome: SendOutcome) => {
    const now = deps.clock();
    switch (outcome.kind) {
      case 'reported':
      case 'already_reported':
        await deps.pushes.record(push, 'reported', { attempts, createdAt, now, lastError: outcome.kind === 'already_reported' ? 'already reported (duplicate identifier)' : '' });
        break;
      case 'shadow':
        await deps.pushes.record(push, 'shadow', { attempts, createdAt, now });
        break;
      case 'failed':
        await deps.pushes.record(push, 'failed', { attempts, createdAt, now, lastError: outcome.reason });
        log.warn({ identifier: push.identifier, meter: push.meter, reason: outcome.reason }, 'push failed');
        break;
      case 'retry':
        // Still pending; the next start-up or cycle resends it with the same identifier.
        await deps.pushes.record(push, 'pending', { attempts, createdAt, now, lastError: outcome.reason });
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unhandled outcome ${JSON.stringify(never)}`);
      }
    }
    deps.metrics?.pushes.inc({ meter: push.meter, outcome: outcome.kind });
  };

  const deliver = async (push: PlannedPush, createdAt: number, previousAttempts: number) => {
    let attempts = previousAttempts;
    const send = async () => {
      const waited = await deps.rateLimit();
      if (waited > 0) deps.metrics?.rateLimitWait.observe(waited / 1000);
      attempts += 1;
      const outcome = await deps.sink.send(push);
      if (outcome.kind === 'retry') throw new RetryOutcome(outcome);
      return outcome;
    };
    const outcome = await retry(send, {
      attempts: deps.maxAttempts,
      // Stopping: the push ends after its current attempt, still pending.
      isRetriable: (err) => err instanceof RetryOutcome && !stopping,
      onRetry: (err) => deps.pushes.record(push, 'pending', { attempts, createdAt, now: deps.clock(), lastError: (err as RetryOutcome).outcome.reason }),
      delay: () => backoffDelay(attempts),
      sleep,
    }).catch((err: unknown) => {
      if (err instanceof RetryOutcome) return err.outcome;
      throw err;
    });
    await finish(push, createdAt, attempts, outcome);
    if (outcome.kind === 'retry') pending.set(streamKey(push), { push, createdAt, attempts, lastAttemptAt: deps.clock() });
    else pending.delete(streamKey(push));
    exportPending();
  };

  const launch = (push: PlannedPush, createdAt: number, attempts: number) => {
    const key = streamKey(push);
    const task = deliver(push, createdAt, attempts)
      .catch((err) => {
        log.error({ err, identifier: push.identifier }, 'push delivery stopped; it stays pending');
        deps.onUncertain();
      })
      .finally(() => {
        inFlight.delete(key);
        delivering.delete(key);
      });
    inFlight.set(key, task);
    delivering.set(key, push);
  };

  const hold = (push: PlannedPush, createdAt: number, attempts: number) =>
    deps.pushes.record(push, 'held', {
      attempts,
      createdAt,
      now: deps.clock(),
      lastError: 'pending for more than 24 h: Stripe may no longer recognise its identifier; verify with `meterline reconcile` before resending',
    });

  const exportPending = () => {
    const stats = pendingStats(pending.values(), deps.clock());
    deps.metrics?.pendingPushes.set(stats.count);
    deps.metrics?.oldestPendingAge.set(stats.oldestAgeMs / 1000);
  };

  return {
    launch,
    hold,
    exportPending,
    inFlightCount: () => inFlight.size,
    isInFlight: (key: string) => inFlight.has(key),
    /** A push of this stream is in flight or pending: the stream is not planned until it settles. */
    busy: (key: string) => inFlight.has(key) || pending.has(key),
    /** The pushes being delivered right now (one may not be in the ledger yet: shadow mode writes it once sent). */
    delivering: () => delivering.values(),
    /** Replaces what is known pending with what the ledger lists. */
    setPending(records: readonly PushRecord[]) {
      pending = new Map(records.map((p) => [streamKey(p), { push: p, createdAt: p.createdAt, attempts: p.attempts, lastAttemptAt: p.updatedAt }]));
    },
    forgetPending: (key: string) => void pending.delete(key),

    /** Resends the pending pushes that are due (same identifier and timestamp); holds those pending past the resend horizon. */
    async resendDuePending() {
      const now = deps.clock();
      for (const [key, p] of pending) {
        if (inFlight.has(key) || !deps.active()) continue;
        const decision = pendingDecision(p, now, deps.maxAttempts);
        if (decision === 'hold') {
          await hold(p.push, p.createdAt, p.attempts);
          pending.delete(key);
        } else if (decision === 'resend' && inFlight.size < deps.maxInFlight) {
          launch(p.push, p.createdAt, p.attempts);
        }
      }
    },

    /** Resolves when the pushes in flight now have settled. */
    settled: async () => void (await Promise.all(inFlight.values())),

    /** Resolves when every launched push has settled (delivered, failed or left pending). */
    async drain() {
      while (inFlight.size > 0) await Promise.all(inFlight.values());
    },

    /** Stop retrying: in-flight pushes end after their current attempt (still pending if undelivered). */
    async stop() {
      stopping = true;
      await this.drain();
    },
  };
}

export type Delivery = ReturnType<typeof createDelivery>;
