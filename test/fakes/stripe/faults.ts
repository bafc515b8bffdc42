/** Fault injection: programmable per test, matched per request, consumed as they hit. */
import { LOCK_TIMEOUT_MESSAGE, RATE_LIMIT_MESSAGE, type StripeErrorBody } from './errors';
import type { IdentifierAttempt } from './state';

/** Which requests a fault applies to (all given conditions must hold). */
export interface FaultMatch {
  /** How many matching requests it hits (default 1). */
  times?: number;
  method?: string;
  /** Exact path (no query) or a pattern, e.g. '/v1/billing/meter_events'. */
  path?: string | RegExp;
  /** Requests carrying a meter event for this customer / event_name / identifier. */
  customer?: string;
  eventName?: string;
  identifier?: string;
}

export type FaultAction =
  /**
   * Answer `status` instead. stage 'before' (default): nothing is executed or stored, like a 5xx
   * from Stripe's edge. stage 'after-accept': the request is executed (events recorded) and the
   * error is what Stripe stores for the Idempotency-Key, so same-key retries get it replayed.
   */
  | { kind: 'status'; status: 400 | 409 | 429 | 500 | 502 | 503; stage?: 'before' | 'after-accept'; code?: string; message?: string; shouldRetry?: boolean }
  /**
   * Execute and store the result, then: 'reset' destroys the connection (the client sees
   * ECONNRESET), 'hang' never answers (the client times out), 'truncate' sends the headers and
   * half the body (stripe-node then raises StripeConnectionError and does NOT retry).
   */
  | { kind: 'timeout-after-accept'; mode?: 'reset' | 'hang' | 'truncate' }
  /** Destroy the connection without executing anything. */
  | { kind: 'reset-before-accept' }
  /** Hold the request this long before handling it (outside the customer+meter lock). */
  | { kind: 'latency'; ms: number };

export type FaultSpec = FaultMatch & FaultAction;

export interface FaultHandle {
  remaining(): number;
  cancel(): void;
}

export class FaultQueue {
  private readonly faults: Array<FaultSpec & { left: number }> = [];

  add(spec: FaultSpec): FaultHandle {
    const entry = { ...spec, left: spec.times ?? 1 };
    this.faults.push(entry);
    return {
      remaining: () => entry.left,
      cancel: () => {
        entry.left = 0;
      },
    };
  }

  clear(): void {
    this.faults.length = 0;
  }

  /** The first fault with hits left whose conditions all hold (its count goes down by one). */
  take(method: string, path: string, attempts: readonly IdentifierAttempt[]): FaultSpec | undefined {
    const f = this.faults.find(
      (x) =>
        x.left > 0 &&
        (x.method === undefined || x.method === method) &&
        (x.path === undefined || (typeof x.path === 'string' ? x.path === path : x.path.test(path))) &&
        (x.customer === undefined || attempts.some((a) => a.customer === x.customer)) &&
        (x.eventName === undefined || attempts.some((a) => a.eventName === x.eventName)) &&
        (x.identifier === undefined || attempts.some((a) => a.identifier === x.identifier)),
    );
    if (f) f.left--;
    return f;
  }
}

export function faultLabel(f: FaultSpec): string {
  return f.kind === 'status' ? `status ${f.status}${f.stage === 'after-accept' ? ' after accept' : ''}` : f.kind;
}

/**
 * The body of an injected status: 400 `invalid_request_error`; 429 `rate_limit` (Stripe's rate-limiter wording); 409
 * `lock_timeout` (Stripe's object-lock wording) with `stripe-should-retry: true` unless told
 * otherwise; 5xx `api_error`.
 */
export function statusFaultError(f: Extract<FaultAction, { kind: 'status' }>): { body: StripeErrorBody; headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  let body: StripeErrorBody;
  if (f.status === 400) body = { type: 'invalid_request_error', code: f.code ?? 'parameter_invalid', message: f.message ?? 'Invalid request (fake: injected 400).' };
  else if (f.status === 429) body = { type: 'invalid_request_error', code: f.code ?? 'rate_limit', message: f.message ?? RATE_LIMIT_MESSAGE };
  else if (f.status === 409) {
    body = { type: 'invalid_request_error', code: f.code ?? 'lock_timeout', message: f.message ?? LOCK_TIMEOUT_MESSAGE };
    if (f.shouldRetry === undefined) headers['stripe-should-retry'] = 'true';
  } else body = { type: 'api_error', message: f.message ?? `Something went wrong on Stripe's end (fake: injected ${f.status}).`, ...(f.code ? { code: f.code } : {}) };
  if (f.shouldRetry !== undefined) headers['stripe-should-retry'] = String(f.shouldRetry);
  return { body, headers };
}

