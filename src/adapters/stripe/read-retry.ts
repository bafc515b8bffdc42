import { backoffDelay, retry } from '../../runtime/retry';

/** A read refused for the moment: 429, or a 400 with code rate_limit / lock_timeout (stripe-node: StripeRateLimitError). */
export function isRateLimited(err: unknown): boolean {
  const e = (err ?? {}) as { type?: string; statusCode?: number; code?: string };
  return e.type === 'StripeRateLimitError' || e.statusCode === 429 || e.code === 'rate_limit' || e.code === 'lock_timeout';
}

/** Worth another try for a read (reads change nothing): rate-limited, a lock conflict, 5xx, or no answer. */
export function isTransient(err: unknown): boolean {
  const e = (err ?? {}) as { type?: string; statusCode?: number };
  return isRateLimited(err) || e.type === 'StripeConnectionError' || e.statusCode === undefined || e.statusCode === 409 || e.statusCode >= 500;
}

export interface ReadPacing {
  /** Grants one call (the reader's share of the account's rate limit). */
  readonly rateLimit?: () => Promise<unknown>;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Calls per read before a rate-limit error is given up on (default 8: backoff up to ~30 s). */
  readonly attempts?: number;
  /** The shortest wait between calls (default 100 ms); Stripe counts its rate limit per second. */
  readonly minDelayMs?: number;
}

/**
 * One Stripe read, paced by the rate limit and retried with backoff while Stripe answers "rate
 * limited" (stripe-node never retries a 429) or fails transiently (5xx, a lost connection: a read
 * is safe to repeat). Any other error is thrown.
 */
export async function pacedRead<T>(call: () => Promise<T>, pacing: ReadPacing = {}): Promise<T> {
  return retry(
    async () => {
      await pacing.rateLimit?.();
      return call();
    },
    { attempts: pacing.attempts ?? 8, isRetriable: isTransient, delay: (attempt) => Math.max(pacing.minDelayMs ?? 100, backoffDelay(attempt, { baseMs: 500 })), ...(pacing.sleep ? { sleep: pacing.sleep } : {}) },
  );
}
