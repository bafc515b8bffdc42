import { redactSecrets } from '../../runtime/redact';
import type { SendOutcome } from './billing-sink';

/** The parts of a stripe-node error the pusher decides on. */
interface StripeLikeError {
  type?: string;
  statusCode?: number;
  code?: string;
  message?: string;
  headers?: Record<string, string | string[] | undefined>;
}

/** Error codes that mean "try again later" whatever the HTTP status (stripe-node Error.js: 400 + rate_limit → StripeRateLimitError). */
const RETRYABLE_CODES = new Set(['rate_limit', 'lock_timeout']);

/**
 * Maps a failed Stripe call to what the pusher does next:
 *  - "an event already exists with identifier …" (400, should-retry false): already delivered;
 *  - 429, 409 lock timeouts, 5xx, connection errors and timeouts: retry with backoff, same identifier;
 *  - a 400 whose code is `rate_limit` (stripe-node raises it as StripeRateLimitError, like a 429)
 *    or `lock_timeout` (an object lock, whatever the status): retry — it says nothing about the push;
 *  - 401 / 403: retry (a key or permission problem is ours to fix, not the push's fault, and
 *    marking usage failed would stop it from ever being billed);
 *  - every other 4xx: failed for good, with Stripe's reason.
 */
export function classifyStripeError(err: unknown): SendOutcome {
  const e = (err ?? {}) as StripeLikeError;
  const status = e.statusCode;
  // Stored in the push ledger and logged: Stripe's 401 message quotes the (masked) key.
  const reason = redactSecrets(`${e.type ?? 'Error'}${status ? ` ${status}` : ''}${e.code ? ` ${e.code}` : ''}: ${e.message ?? String(err)}`);
  if (e.type === 'StripeConnectionError' || status === undefined) return { kind: 'retry', reason };
  if ((status === 400 || status === 409) && /already exists with identifier|duplicate_meter_event/i.test(`${e.message ?? ''} ${e.code ?? ''}`)) {
    return { kind: 'already_reported' };
  }
  if (e.type === 'StripeRateLimitError' || (e.code !== undefined && RETRYABLE_CODES.has(e.code))) return { kind: 'retry', reason, status };
  if (status === 429 || status === 409 || status >= 500 || status === 401 || status === 403) return { kind: 'retry', reason, status };
  const shouldRetry = e.headers?.['stripe-should-retry'];
  if (shouldRetry === 'true') return { kind: 'retry', reason, status };
  return { kind: 'failed', reason };
}
