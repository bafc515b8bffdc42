import { classifyStripeError } from '../../src/adapters/stripe/errors';
import { planAbsolute, planDelta, pushIdentifier, pushTimestamp, RESEND_HORIZON_MS, STRIPE_MAX_AGE_MS } from '../../src/domain/push-plan';
import { backoffDelay } from '../../src/runtime/retry';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const W = Date.parse('2026-11-22T10:00:00Z');
const stream = { tenant: 't', customer: 'c', meter: 'tokens', eventName: 'tokens', stripeCustomerId: 'cus_1', windowStart: W, windowEnd: W + 3_600_000 };

describe('delta pushes: floor(total) − pushed, remainder carried', () => {
  it('given a fractional total, when nothing was pushed, then the whole part is pushed and the fraction waits', () => {
    const r = planDelta({ ...stream, total: '10.75', pushed: 0n }, NOW);
    expect(r).toMatchObject({ kind: 'push', push: { value: 10n, pushedFrom: 0n, pushedTo: 10n, mode: 'delta' } });
  });
  it('given the fraction grows past a whole unit, then exactly the new whole units are pushed', () => {
    expect(planDelta({ ...stream, total: '10.99', pushed: 10n }, NOW)).toEqual({ kind: 'nothing' });
    expect(planDelta({ ...stream, total: '11.24', pushed: 10n }, NOW)).toMatchObject({ kind: 'push', push: { value: 1n, pushedFrom: 10n, pushedTo: 11n } });
  });
  it('given a negative correction, then a negative delta is pushed', () => {
    expect(planDelta({ ...stream, total: '7.5', pushed: 10n }, NOW)).toMatchObject({ kind: 'push', push: { value: -3n, pushedTo: 7n } });
    expect(planDelta({ ...stream, total: '-0.5', pushed: 0n }, NOW)).toMatchObject({ kind: 'push', push: { value: -1n } });
  });
  it('given no Stripe mapping, then usage waits as awaiting mapping', () => {
    expect(planDelta({ ...stream, stripeCustomerId: null, total: '5', pushed: 0n }, NOW)).toEqual({ kind: 'awaiting_mapping' });
  });
  it('given a window older than Stripe accepts, then the push is too old, with a reason', () => {
    const old = Date.parse('2026-10-01T00:00:00Z');
    const r = planDelta({ ...stream, windowStart: old, windowEnd: old + 3_600_000, total: '5', pushed: 0n }, NOW);
    expect(r.kind).toBe('too_old');
    expect(r.kind === 'too_old' && r.reason).toMatch(/^timestamp_too_far_in_past/);
  });
});

describe("Stripe's 35 days and the resend horizon", () => {
  const DAY = 86_400_000;
  const at = (age: number) => {
    const ws = Math.floor((NOW - age) / 3_600_000) * 3_600_000;
    return planDelta({ ...stream, windowStart: ws, windowEnd: ws + 3_600_000, total: '5', pushed: 0n }, NOW);
  };
  it('given a window 34.5 days old, then it is too old: a resend up to 24 h later would land past 35 days', () => {
    expect(at(34.5 * DAY).kind).toBe('too_old');
  });
  it('given any push planned now, then its timestamp is still within 35 days at the end of the resend horizon', () => {
    for (const days of [1, 10, 30, 33, 33.9, 34, 34.2, 34.9, 35.5]) {
      const r = at(days * DAY);
      if (r.kind !== 'push') continue;
      expect(NOW + RESEND_HORIZON_MS - r.push.timestamp * 1000).toBeLessThan(STRIPE_MAX_AGE_MS);
    }
    expect(at(33 * DAY).kind).toBe('push');
  });
});

describe('absolute pushes: the period value when it changes', () => {
  const abs = { ...stream, meter: 'seats', periodStart: Date.parse('2026-11-01T00:00:00Z'), periodEnd: Date.parse('2026-12-01T00:00:00Z') };
  it('pushes the period value, then only when it changes', () => {
    expect(planAbsolute({ ...abs, value: '12', lastPushed: null }, NOW)).toMatchObject({ kind: 'push', push: { value: 12n, mode: 'absolute' } });
    expect(planAbsolute({ ...abs, value: '12', lastPushed: 12n }, NOW)).toEqual({ kind: 'nothing' });
    expect(planAbsolute({ ...abs, value: '13.9', lastPushed: 12n }, NOW)).toMatchObject({ kind: 'push', push: { value: 13n, pushedFrom: 12n } });
  });
});

describe('identifiers and timestamps', () => {
  it('are deterministic, at most 100 characters, and differ for different pushes of a stream', () => {
    const a = pushIdentifier(stream, W, 0n, 10n, 'delta');
    expect(a).toBe(pushIdentifier(stream, W, 0n, 10n, 'delta'));
    expect(a.length).toBeLessThanOrEqual(100);
    expect(pushIdentifier(stream, W, 10n, 11n, 'delta')).not.toBe(a);
    expect(pushIdentifier({ ...stream, tenant: 't2' }, W, 0n, 10n, 'delta')).not.toBe(a);
  });
  it('places the timestamp inside the window and never in the future', () => {
    expect(pushTimestamp(W, W + 3_600_000, NOW)).toBe((W + 3_600_000 - 1000) / 1000);
    const current = Date.parse('2026-11-22T12:00:00Z');
    expect(pushTimestamp(current, current + 3_600_000, NOW + 30_000)).toBe((NOW + 30_000) / 1000);
  });
});

describe('classifying Stripe errors', () => {
  it('treats a duplicate identifier as already delivered', () => {
    expect(classifyStripeError({ type: 'StripeInvalidRequestError', statusCode: 400, message: 'An event already exists with identifier ml_x' })).toEqual({ kind: 'already_reported' });
  });
  it('retries 429, 5xx, connection errors and auth problems; fails other 4xx for good', () => {
    expect(classifyStripeError({ type: 'StripeRateLimitError', statusCode: 429, message: 'slow down' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeAPIError', statusCode: 503, message: 'x' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeConnectionError', message: 'socket hang up' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeAuthenticationError', statusCode: 401, message: 'bad key' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeInvalidRequestError', statusCode: 400, code: 'parameter_invalid_integer', message: 'value' })).toMatchObject({ kind: 'failed', reason: expect.stringMatching(/parameter_invalid_integer/) });
  });
  it('retries a 400 that stripe-node raises as a rate-limit error (code rate_limit) and a 400 lock_timeout', () => {
    expect(classifyStripeError({ type: 'StripeRateLimitError', statusCode: 400, code: 'rate_limit', message: 'Request rate limit exceeded.' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeInvalidRequestError', statusCode: 400, code: 'rate_limit', message: 'Request rate limit exceeded.' }).kind).toBe('retry');
    expect(classifyStripeError({ type: 'StripeInvalidRequestError', statusCode: 400, code: 'lock_timeout', message: 'This object cannot be accessed right now' }).kind).toBe('retry');
  });
  it('backs off exponentially with jitter, capped', () => {
    expect(backoffDelay(1, { random: () => 0.999 })).toBeLessThan(250);
    expect(backoffDelay(5, { random: () => 0.999 })).toBeLessThan(4000);
    expect(backoffDelay(5, { random: () => 0.999 })).toBeGreaterThan(3000);
    expect(backoffDelay(30, { random: () => 0.999 })).toBeLessThan(30_000);
  });
});
