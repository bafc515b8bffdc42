import { RESEND_HORIZON_MS } from './push-plan';

/**
 * When the push cycle resends a push that is still pending after a delivery's retries. Pure.
 *
 * A pending push blocks its stream (one push per stream at a time), so it must never wait for a
 * restart: every cycle resends the pending pushes that are due, with the same identifier (a
 * resend of an accepted event answers "already exists"), backing off between rounds. One pending
 * for longer than the resend horizon is held instead: Stripe may have forgotten its identifier.
 */
export interface PendingPush {
  readonly createdAt: number;
  /** Calls made for it so far, over all rounds. */
  readonly attempts: number;
  /** When its last round ended (or when it was read from the ledger: its updated_at). */
  readonly lastAttemptAt: number;
}

export const RESEND_BASE_MS = 10_000;
export const RESEND_MAX_MS = 5 * 60_000;

/** Backoff between rounds: 10 s after the first round, doubling per round of `attemptsPerRound` calls, at most 5 minutes. */
export function resendDelay(attempts: number, attemptsPerRound: number): number {
  const rounds = Math.max(1, Math.ceil(attempts / Math.max(1, attemptsPerRound)));
  return Math.min(RESEND_MAX_MS, RESEND_BASE_MS * 2 ** Math.min(20, rounds - 1));
}

export type PendingDecision = 'resend' | 'wait' | 'hold';

export function pendingDecision(p: PendingPush, now: number, attemptsPerRound: number): PendingDecision {
  if (now - p.createdAt > RESEND_HORIZON_MS) return 'hold';
  return now - p.lastAttemptAt >= resendDelay(p.attempts, attemptsPerRound) ? 'resend' : 'wait';
}

/** For the gauges: how many pushes are pending, and the age of the oldest (0 when none). */
export function pendingStats(pending: Iterable<PendingPush>, now: number): { count: number; oldestAgeMs: number } {
  let count = 0;
  let oldest = now;
  for (const p of pending) {
    count += 1;
    oldest = Math.min(oldest, p.createdAt);
  }
  return { count, oldestAgeMs: count === 0 ? 0 : now - oldest };
}
