/**
 * How fast meterline may call Stripe, by the key's mode. Pure.
 *
 * Live mode: meter events have their own limit of 1000 calls/s; reads (event summaries, meter
 * lists) count against the basic limit of 100 reads/s. Test mode and sandboxes: every call,
 * meter events and reads alike, counts against the basic limit of 25 operations/s — a pusher
 * at the live rate would only collect 429s. Defaults stay under each limit with headroom, and
 * leave room for reconcile's reads; STRIPE_RATE_LIMIT overrides the pusher's rate.
 */
export type StripeKeyMode = 'test' | 'live';

/** Stripe's basic rate limit in test mode and sandboxes (operations per second, reads included). */
export const TEST_MODE_BASIC_LIMIT = 25;
/** Stripe's live limit for meter events (calls per second). */
export const LIVE_METER_EVENT_LIMIT = 1000;

const PUSH_DEFAULT: Record<StripeKeyMode, number> = { test: 20, live: 900 };
/** Reconcile's reads: with the pusher's default, still under the test-mode limit (20 + 4 < 25). */
const RECONCILE_DEFAULT: Record<StripeKeyMode, number> = { test: 4, live: 50 };

export interface StripeRateLimits {
  readonly keyMode: StripeKeyMode;
  /** Calls per second for pushes (meter events, stream requests, sessions). */
  readonly pushPerSecond: number;
  /** Calls per second for reconcile's reads (meter lists, event summaries). */
  readonly reconcilePerSecond: number;
  /** Where pushPerSecond comes from, for the start-up log and `meterline config`. */
  readonly source: 'STRIPE_RATE_LIMIT' | 'test-mode default' | 'live-mode default';
}

/** `sk_live_…` / `rk_live_…` are live; every other key (test, sandbox) and no key count as test mode. */
export function stripeKeyMode(apiKey: string | undefined): StripeKeyMode {
  return apiKey !== undefined && /^(sk|rk)_live_/.test(apiKey) ? 'live' : 'test';
}

export function stripeRateLimits(apiKey: string | undefined, override: number | undefined): StripeRateLimits {
  // Shadow mode (no key) sends nothing: the live rate only sizes how many pushes are in flight.
  const keyMode = apiKey === undefined ? 'live' : stripeKeyMode(apiKey);
  return {
    keyMode,
    pushPerSecond: override ?? PUSH_DEFAULT[keyMode],
    reconcilePerSecond: RECONCILE_DEFAULT[keyMode],
    source: override !== undefined ? 'STRIPE_RATE_LIMIT' : keyMode === 'test' ? 'test-mode default' : 'live-mode default',
  };
}
