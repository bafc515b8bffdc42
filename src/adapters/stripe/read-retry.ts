import { backoffDelay } from '../../runtime/rate-limiter';

/** A read refused for the moment: 429, or a 400 with code rate_limit / lock_timeout (stripe-node: StripeRateLimitError). */
export function isRateLimited(err: unknown): boolean {
  const e = (err ?? {}) as { type?: string; statusCode?: number; code?: string };
  return e.type === 'StripeRateLimitError' || e.statusCode === 429 || e.code === 'rate_limit' || e.code === 'lock_timeout';
}

export interface ReadPacing {
  /** Grants one call (the reader's share of the account's rate limit). */
  readonly rateLimit?: () => Promise<unknown>;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Calls per read before a rate-limit error is given up on (default 8: backoff up to ~30 s). */
  readonly attempts?: number;
}

/**
 * One Stripe read, paced by the rate limit and retried with backoff while Stripe answers
 * "rate limited" (stripe-node retries 409 and 5xx itself, never 429). Any other error is thrown.
 */
export async function pacedRead<T>(call: () => Promise<T>, pacing: ReadPacing = {}): Promise<T> {
  const sleep = pacing.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const attempts = pacing.attempts ?? 8;
  for (let attempt = 1; ; attempt += 1) {
    await pacing.rateLimit?.();
    try {
      return await call();
    } catch (err) {
      if (!isRateLimited(err) || attempt >= attempts) throw err;
      await sleep(Math.max(100, backoffDelay(attempt, { baseMs: 500 })));
    }
  }
}
