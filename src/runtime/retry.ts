import { MeterlineError } from './errors';

/** Exponential backoff with full jitter: attempt 1 → up to base, doubling to at most max. */
export function backoffDelay(attempt: number, opts: { baseMs?: number; maxMs?: number; random?: () => number } = {}): number {
  const base = opts.baseMs ?? 250;
  const max = opts.maxMs ?? 30_000;
  const ceiling = Math.min(max, base * 2 ** Math.max(0, attempt - 1));
  return Math.floor((opts.random ?? Math.random)() * ceiling);
}

/** The project's one rule for "worth another try": a MeterlineError that says it is retriable. */
export function isRetriableError(err: unknown): boolean {
  return err instanceof MeterlineError && err.retriable;
}

export const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface RetryOptions {
  /** Calls at most, the first included (≥ 1). */
  readonly attempts: number;
  /** Which errors are worth another call (default: a retriable MeterlineError). Any other is thrown at once. */
  readonly isRetriable?: (err: unknown) => boolean;
  /** The wait before call `attempt + 1` (default: backoffDelay(attempt)). */
  readonly delay?: (attempt: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Runs after a retriable failure, before the wait: e.g. a ledger write that records the
   * attempt. An error it throws ends the retries and is thrown as is.
   */
  readonly onRetry?: (err: unknown, attempt: number) => void | Promise<void>;
}

/**
 * Calls `fn` until it resolves, throws an error that is not retriable (thrown at once), or has
 * been called `attempts` times (the last error is thrown). `fn` gets the attempt number, from 1.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  const isRetriable = opts.isRetriable ?? isRetriableError;
  const delay = opts.delay ?? ((attempt: number) => backoffDelay(attempt));
  const sleep = opts.sleep ?? realSleep;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !isRetriable(err)) throw err;
      await opts.onRetry?.(err, attempt);
      await sleep(delay(attempt));
    }
  }
}
