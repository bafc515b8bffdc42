/**
 * Proves, with the real stripe-node 23 client, that test/fakes/stripe enforces Stripe's rules,
 * so that a pusher passing against it means something.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startFakeStripe, type FakeStripe, type Meter } from '../fakes/stripe';

const DAY = 86_400;
/** 2026-01-10T12:00:00Z: hour-aligned, so summary windows are easy to reason about. */
const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

let fake: FakeStripe;
let stripe: Stripe;

beforeEach(async () => {
  fake = await startFakeStripe();
  stripe = fake.client({ maxNetworkRetries: 0 });
});
afterEach(async () => {
  await fake.close();
});

/** The rejection of a promise (fails the test if it resolves). */
async function rejection(p: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(Stripe.errors.StripeError);
    return e as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

const header = (e: Stripe.errors.StripeError, name: string): string | undefined => (e.headers as Record<string, string> | undefined)?.[name];

async function apiMeter(eventName = 'api_calls', formula: 'sum' | 'count' | 'last' = 'sum'): Promise<Stripe.Billing.Meter> {
  return stripe.billing.meters.create({
    display_name: `Meter ${eventName}`,
    event_name: eventName,
    default_aggregation: { formula },
    customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' },
    value_settings: { event_payload_key: 'value' },
  });
}

const event = (identifier: string, value: string, extra: Partial<Stripe.Billing.MeterEventCreateParams> = {}): Stripe.Billing.MeterEventCreateParams => ({
  event_name: 'api_calls',
  identifier,
  payload: { stripe_customer_id: 'cus_A', value },
  ...extra,
});

describe('meters', () => {
  it('creates, lists (newest first), retrieves, and validates against the OpenAPI request schema', async () => {
    const a = await apiMeter('a_calls');
    const b = await apiMeter('b_calls', 'count');
    expect(a).toMatchObject({ object: 'billing.meter', status: 'active', event_name: 'a_calls', default_aggregation: { formula: 'sum' }, event_time_window: null });
    const listed = await stripe.billing.meters.list();
    expect(listed.data.map((m) => m.id)).toEqual([b.id, a.id]);
    expect(listed).toMatchObject({ object: 'list', has_more: false, url: '/v1/billing/meters' });
    const page = await stripe.billing.meters.list({ limit: 1 });
    expect(page.data.map((m) => m.id)).toEqual([b.id]);
    expect(page.has_more).toBe(true);
    expect((await stripe.billing.meters.retrieve(a.id)).event_name).toBe('a_calls');

    const missing = await rejection(stripe.billing.meters.retrieve('mtr_nope'));
    expect(missing).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(missing).toMatchObject({ statusCode: 404, code: 'resource_missing' });

    const taken = await rejection(apiMeter('a_calls'));
    expect(taken).toMatchObject({ statusCode: 400, param: 'event_name' });

    const badFormula = await rejection(
      stripe.billing.meters.create({ display_name: 'x', event_name: 'max_calls', default_aggregation: { formula: 'max' as 'sum' } }),
    );
    expect(badFormula).toMatchObject({ statusCode: 400, param: 'default_aggregation[formula]' });
    const unknown = await rejection(stripe.billing.meters.create({ display_name: 'x', event_name: 'y', default_aggregation: { formula: 'sum' }, colour: 'red' } as Stripe.Billing.MeterCreateParams));
    expect(unknown).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'colour' });
    const noName = await rejection(stripe.billing.meters.create({ display_name: 'x', default_aggregation: { formula: 'sum' } } as Stripe.Billing.MeterCreateParams));
    expect(noName).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'event_name' });
  });

  it('requires a secret key (401) and gives request-id headers', async () => {
    const err = await rejection(fake.client({ apiKey: 'sk_test_wrong', maxNetworkRetries: 0 }).billing.meters.list());
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);
    expect(err.requestId).toMatch(/^req_/);
  });
});

describe('POST /v1/billing/meter_events', () => {
  beforeEach(async () => {
    await apiMeter();
  });

  it('accepts an event, parsing bracket-notation form bodies (custom payload keys included)', async () => {
    const ev = await stripe.billing.meterEvents.create(event('ev-1', '42'));
    expect(ev).toMatchObject({ object: 'billing.meter_event', identifier: 'ev-1', event_name: 'api_calls', payload: { stripe_customer_id: 'cus_A', value: '42' } });
    expect(ev.lastResponse.requestId).toMatch(/^req_/);

    fake.addMeter({ event_name: 'tokens used', customerKey: 'org id', valueKey: 'tokens' });
    await stripe.billing.meterEvents.create({ event_name: 'tokens used', identifier: 'ev-&=[2]', payload: { 'org id': 'cus_B&x=1', tokens: '7' } });
    expect(fake.acceptedEvents().map((e) => [e.identifier, e.customer, e.eventName, e.value])).toEqual([
      ['ev-1', 'cus_A', 'api_calls', 42n],
      ['ev-&=[2]', 'cus_B&x=1', 'tokens used', 7n],
    ]);

    const generated = await stripe.billing.meterEvents.create({ event_name: 'api_calls', payload: { stripe_customer_id: 'cus_A', value: '1' } });
    expect(generated.identifier).toEqual(expect.any(String));
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(43n);
  });

  it('rejects a reused identifier: 400, stripe-should-retry false, StripeInvalidRequestError; the history keeps both values', async () => {
    await stripe.billing.meterEvents.create(event('dup-1', '5'));
    const err = await rejection(stripe.billing.meterEvents.create(event('dup-1', '6')));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.statusCode).toBe(400);
    expect(err.rawType).toBe('invalid_request_error');
    expect(err.message).toBe('An event already exists with identifier dup-1');
    expect(header(err, 'stripe-should-retry')).toBe('false');
    expect(fake.acceptedEvents()).toHaveLength(1);
    expect(fake.identifierLog().map((a) => [a.identifier, a.value, a.outcome])).toEqual([
      ['dup-1', '5', 'accepted'],
      ['dup-1', '6', 'duplicate'],
    ]);
    expect(fake.identifierConflicts()).toEqual([{ identifier: 'dup-1', variants: [expect.objectContaining({ value: '5' }), expect.objectContaining({ value: '6' })] }]);
  });

  it('rejects decimal, non-numeric and 16-digit values; accepts 15 digits and negatives', async () => {
    for (const [value, rule] of [
      ['1.5', 'invalid_value'],
      ['12abc', 'invalid_value'],
      ['1234567890123456', 'too_many_digits'],
    ] as const) {
      const err = await rejection(stripe.billing.meterEvents.create(event(`v-${value}`, value)));
      expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
      expect(err).toMatchObject({ statusCode: 400, param: 'payload[value]' });
      expect(header(err, 'x-fake-stripe-rule')).toBe(rule);
    }
    await stripe.billing.meterEvents.create(event('v-15', '123456789012345'));
    await stripe.billing.meterEvents.create(event('v-neg', '-3'));
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(123456789012342n);
  });

  it('enforces the timestamp window: past 35 days, at most 5 minutes ahead (injectable clock)', async () => {
    fake.clock.set(T0);
    const now = T0 / 1000;
    const tooOld = await rejection(stripe.billing.meterEvents.create(event('t-old', '1', { timestamp: now - 36 * DAY })));
    expect(tooOld).toMatchObject({ statusCode: 400, param: 'timestamp' });
    expect(header(tooOld, 'x-fake-stripe-rule')).toBe('timestamp_too_far_in_past');
    const ahead = await rejection(stripe.billing.meterEvents.create(event('t-ahead', '1', { timestamp: now + 6 * 60 })));
    expect(header(ahead, 'x-fake-stripe-rule')).toBe('timestamp_in_future');
    await stripe.billing.meterEvents.create(event('t-edge-old', '1', { timestamp: now - 35 * DAY + 60 }));
    await stripe.billing.meterEvents.create(event('t-edge-ahead', '1', { timestamp: now + 5 * 60 }));
    expect(fake.acceptedEvents().map((e) => e.identifier)).toEqual(['t-edge-old', 't-edge-ahead']);
  });

  it('rejects a payload without the customer key, an unknown event_name, an inactive meter, unknown params', async () => {
    const noCustomer = await rejection(stripe.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'c-1', payload: { customer: 'cus_A', value: '1' } }));
    expect(noCustomer).toMatchObject({ statusCode: 400, param: 'payload[stripe_customer_id]' });
    const noValue = await rejection(stripe.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'c-2', payload: { stripe_customer_id: 'cus_A' } }));
    expect(noValue).toMatchObject({ statusCode: 400, param: 'payload[value]' });
    const noMeter = await rejection(stripe.billing.meterEvents.create(event('c-3', '1', { event_name: 'nope' })));
    expect(noMeter).toMatchObject({ statusCode: 400, param: 'event_name' });
    expect(header(noMeter, 'x-fake-stripe-rule')).toBe('no_meter');
    const long = await rejection(stripe.billing.meterEvents.create(event('x'.repeat(101), '1')));
    expect(long).toMatchObject({ statusCode: 400, param: 'identifier' });
    const extra = await rejection(stripe.billing.meterEvents.create({ ...event('c-4', '1'), customer: 'cus_A' } as Stripe.Billing.MeterEventCreateParams));
    expect(extra).toMatchObject({ statusCode: 400, code: 'parameter_unknown', param: 'customer' });

    const [meter] = (await stripe.billing.meters.list()).data;
    await stripe.billing.meters.deactivate(meter!.id);
    const inactive = await rejection(stripe.billing.meterEvents.create(event('c-5', '1')));
    expect(header(inactive, 'x-fake-stripe-rule')).toBe('archived_meter');
    expect(fake.acceptedEvents()).toHaveLength(0);
    expect(fake.identifierLog().every((a) => a.outcome === 'rejected')).toBe(true);
  });

  it('allows one concurrent call per customer and meter: the second gets 429 (StripeRateLimitError, lock wording)', async () => {
    fake.settings.latencyMs = 300;
    const results = await Promise.allSettled([
      stripe.billing.meterEvents.create(event('cc-1', '1')),
      stripe.billing.meterEvents.create(event('cc-2', '1')),
      stripe.billing.meterEvents.create(event('cc-3', '1', { payload: { stripe_customer_id: 'cus_OTHER', value: '1' } })),
    ]);
    const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(rejected).toHaveLength(1);
    const err = rejected[0]!.reason as Stripe.errors.StripeError;
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(err).toMatchObject({ statusCode: 429, code: 'lock_timeout' });
    expect(err.message).toMatch(/another API request or Stripe process is currently accessing it/);
    expect(fake.acceptedEvents().map((e) => e.customer).sort()).toEqual(['cus_A', 'cus_OTHER']);
    expect(fake.identifierLog().filter((a) => a.outcome === 'conflict')).toHaveLength(1);
  });

  it('applies a global rate limit (calls/s) as 429 rate_limit', async () => {
    fake.settings.rateLimitPerSecond = 3;
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => stripe.billing.meters.list()));
    const errs = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as Stripe.errors.StripeError);
    expect(errs).toHaveLength(2);
    for (const e of errs) expect(e).toMatchObject({ type: 'StripeRateLimitError', statusCode: 429, code: 'rate_limit' });
    expect(fake.callsByStatus()).toMatchObject({ 200: 4, 429: 2 }); // the meter creation in beforeEach + 3
  });
});

describe('idempotency and faults', () => {
  beforeEach(async () => {
    await apiMeter();
  });

  it('replays the same Idempotency-Key with the same params and rejects it with other params', async () => {
    const first = await stripe.billing.meterEvents.create(event('idem-1', '3'), { idempotencyKey: 'key-1' });
    const again = await stripe.billing.meterEvents.create(event('idem-1', '3'), { idempotencyKey: 'key-1' });
    expect(again).toEqual(first);
    expect((again.lastResponse.headers as Record<string, string>)['idempotent-replayed']).toBe('true');
    const err = await rejection(stripe.billing.meterEvents.create(event('idem-2', '3'), { idempotencyKey: 'key-1' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.statusCode).toBe(400);
    expect(fake.acceptedEvents()).toHaveLength(1);
    expect(fake.identifierLog().map((a) => a.outcome)).toEqual(['accepted', 'idempotent_replay', 'idempotency_error']);
  });

  it('an injected 500 is retried by stripe-node with the same Idempotency-Key and counted once', async () => {
    fake.inject({ kind: 'status', status: 500, path: '/v1/billing/meter_events' });
    const retrying = fake.client({ maxNetworkRetries: 2 });
    await retrying.billing.meterEvents.create(event('r-1', '9'));
    const calls = fake.calls().filter((c) => c.endpoint === 'POST /v1/billing/meter_events');
    expect(calls.map((c) => c.status)).toEqual([500, 200]);
    expect(calls[0]!.idempotencyKey).toMatch(/^stripe-node-retry-/);
    expect(calls[1]!.idempotencyKey).toBe(calls[0]!.idempotencyKey);
    expect(fake.acceptedEvents()).toHaveLength(1);
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(9n);
    expect(fake.callsByEndpoint()['POST /v1/billing/meter_events']).toBe(2);
    expect(fake.identifierConflicts()).toEqual([]);
  });

  it('timeout after accept, stripe-node retries (connection reset, same key): one accepted event', async () => {
    fake.inject({ kind: 'timeout-after-accept', mode: 'reset', path: '/v1/billing/meter_events' });
    const ev = await fake.client({ maxNetworkRetries: 1 }).billing.meterEvents.create(event('to-1', '4'));
    expect(ev.identifier).toBe('to-1');
    const calls = fake.calls().filter((c) => c.endpoint === 'POST /v1/billing/meter_events');
    expect(calls.map((c) => [c.outcome, c.replayed])).toEqual([
      ['reset', false],
      ['answered', true],
    ]);
    expect(fake.acceptedEvents()).toHaveLength(1);
  });

  it('timeout after accept, the caller retries the same identifier under a new key: 400 duplicate, still one event', async () => {
    fake.inject({ kind: 'timeout-after-accept', mode: 'hang', path: '/v1/billing/meter_events' });
    const impatient = fake.client({ maxNetworkRetries: 0, timeout: 300 });
    const lost = await rejection(impatient.billing.meterEvents.create(event('to-2', '4')));
    expect(lost).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    const dup = await rejection(stripe.billing.meterEvents.create(event('to-2', '4')));
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(header(dup, 'stripe-should-retry')).toBe('false');
    expect(fake.acceptedEvents().map((e) => e.identifier)).toEqual(['to-2']);
    expect(fake.identifierConflicts()).toEqual([]);
  });

  it('a 500 after accept is what the key replays; a retry under a new key then meets the duplicate', async () => {
    fake.inject({ kind: 'status', status: 500, stage: 'after-accept', path: '/v1/billing/meter_events' });
    const err = await rejection(stripe.billing.meterEvents.create(event('aa-1', '2'), { idempotencyKey: 'aa-key' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    const replayed = await rejection(stripe.billing.meterEvents.create(event('aa-1', '2'), { idempotencyKey: 'aa-key' }));
    expect(replayed.statusCode).toBe(500);
    const dup = await rejection(stripe.billing.meterEvents.create(event('aa-1', '2')));
    expect(dup.message).toMatch(/An event already exists with identifier aa-1/);
    expect(fake.acceptedEvents()).toHaveLength(1);
  });

  it('connection faults: a reset before accept is retried even with maxNetworkRetries 0; a truncated answer is not retried', async () => {
    fake.inject({ kind: 'reset-before-accept', path: '/v1/billing/meter_events' });
    await stripe.billing.meterEvents.create(event('cf-1', '1')); // stripe-node retries ECONNRESET once regardless
    expect(fake.calls().map((c) => c.outcome).slice(-2)).toEqual(['reset', 'answered']);
    expect(fake.identifierLog().map((a) => a.outcome)).toEqual(['connection_dropped', 'accepted']);

    fake.inject({ kind: 'timeout-after-accept', mode: 'truncate', path: '/v1/billing/meter_events' });
    const cut = await rejection(fake.client({ maxNetworkRetries: 2 }).billing.meterEvents.create(event('cf-2', '1')));
    expect(cut).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(fake.calls().filter((c) => c.endpoint === 'POST /v1/billing/meter_events')).toHaveLength(3); // no retry
    expect(fake.acceptedEvents().map((e) => e.identifier)).toEqual(['cf-1', 'cf-2']); // but it was accepted

    fake.inject({ kind: 'latency', ms: 200, path: '/v1/billing/meter_events' });
    const started = Date.now();
    await stripe.billing.meterEvents.create(event('cf-3', '1'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
  });

  it('a 409 lock_timeout with stripe-should-retry: true is retried by stripe-node; 429/503 injection by customer', async () => {
    fake.inject({ kind: 'status', status: 409, customer: 'cus_A' });
    await fake.client({ maxNetworkRetries: 1 }).billing.meterEvents.create(event('l-1', '1'));
    expect(fake.calls().filter((c) => c.endpoint === 'POST /v1/billing/meter_events').map((c) => c.status)).toEqual([409, 200]);

    fake.inject({ kind: 'status', status: 429, customer: 'cus_Z', times: 2 });
    const limited = await rejection(stripe.billing.meterEvents.create(event('l-2', '1', { payload: { stripe_customer_id: 'cus_Z', value: '1' } })));
    expect(limited).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    await stripe.billing.meterEvents.create(event('l-3', '1')); // cus_A: not matched
    fake.inject({ kind: 'status', status: 503, eventName: 'api_calls' });
    expect(await rejection(stripe.billing.meterEvents.create(event('l-4', '1')))).toMatchObject({ type: 'StripeAPIError', statusCode: 503 });
    expect(fake.acceptedEvents().map((e) => e.identifier)).toEqual(['l-1', 'l-3']);
  });
});

describe('event summaries and adjustments', () => {
  // These tests freeze the fake's clock: summaries without processing lag (the lag has its own test).
  beforeEach(() => {
    fake.settings.summaryLagMs = 0;
  });
  /** Sends one event per [timestamp, value]; returns their identifiers. */
  async function seed(meter: Stripe.Billing.Meter | Meter, values: Array<[number, string]>, customer = 'cus_A'): Promise<string[]> {
    const ids: string[] = [];
    for (const [ts, value] of values) {
      const identifier = `${meter.event_name}-${customer}-${ids.length}`;
      await stripe.billing.meterEvents.create({ event_name: meter.event_name, identifier, timestamp: ts, payload: { stripe_customer_id: customer, value } });
      ids.push(identifier);
    }
    return ids;
  }

  it('computes sum / count / last, per window, from accepted events only; enforces minute/hour alignment', async () => {
    fake.clock.set(T0);
    const t = T0 / 1000;
    const sum = await apiMeter('s_calls', 'sum');
    const count = await apiMeter('c_calls', 'count');
    const last = await apiMeter('l_calls', 'last');
    const points: Array<[number, string]> = [
      [t - 7200 + 60, '5'],
      [t - 7200 + 120, '7'],
      [t - 60, '3'],
    ];
    for (const m of [sum, count, last]) await seed(m, points);
    await seed(sum, [[t - 30, '100']], 'cus_B');
    await rejection(stripe.billing.meterEvents.create({ event_name: 's_calls', identifier: 'bad', payload: { stripe_customer_id: 'cus_A', value: '1.5' } }));

    const range = { customer: 'cus_A', start_time: t - 7200, end_time: t };
    const one = async (m: Stripe.Billing.Meter) => (await stripe.billing.meters.listEventSummaries(m.id, range)).data;
    const s = await one(sum);
    expect(s).toEqual([{ id: expect.stringMatching(/^mtrusg_/), object: 'billing.meter_event_summary', aggregated_value: 15, start_time: t - 7200, end_time: t, meter: sum.id, livemode: false }]);
    expect((await one(count))[0]!.aggregated_value).toBe(3);
    expect((await one(last))[0]!.aggregated_value).toBe(3);

    const hourly = await stripe.billing.meters.listEventSummaries(sum.id, { ...range, value_grouping_window: 'hour' });
    expect(hourly.data.map((w) => [w.start_time, w.end_time, w.aggregated_value])).toEqual([
      [t - 3600, t, 3],
      [t - 7200, t - 3600, 12],
    ]);
    expect(hourly.url).toBe(`/v1/billing/meters/${sum.id}/event_summaries`);

    const unaligned = await rejection(stripe.billing.meters.listEventSummaries(sum.id, { ...range, start_time: t - 7200 + 30 }));
    expect(unaligned).toMatchObject({ statusCode: 400, param: 'start_time' });
    const notHourly = await rejection(stripe.billing.meters.listEventSummaries(sum.id, { ...range, end_time: t - 60, value_grouping_window: 'hour' }));
    expect(notHourly).toMatchObject({ statusCode: 400, param: 'end_time' });
    const noCustomer = await rejection(stripe.billing.meters.listEventSummaries(sum.id, { start_time: t - 60, end_time: t } as Stripe.Billing.MeterListEventSummariesParams));
    expect(noCustomer).toMatchObject({ statusCode: 400, code: 'parameter_missing', param: 'customer' });
  });

  it('a pre-aggregated meter (event_time_window) keeps only the newest event per window', async () => {
    fake.clock.set(T0);
    const t = T0 / 1000;
    const m = fake.addMeter({ event_name: 'seats', formula: 'sum', event_time_window: 'hour' });
    await seed(m, [
      [t - 3000, '10'],
      [t - 3500, '12'],
      [t - 7000, '4'],
    ]);
    const [w] = (await stripe.billing.meters.listEventSummaries(m.id, { customer: 'cus_A', start_time: t - 7200, end_time: t })).data;
    expect(w!.aggregated_value).toBe(16);
  });

  it('cancels an event within 24 h of receipt; cancelled events stop counting', async () => {
    fake.clock.set(T0);
    const t = T0 / 1000;
    const m = await apiMeter();
    const [first, second] = await seed(m, [
      [t - 120, '5'],
      [t - 60, '6'],
    ]);
    const adj = await stripe.billing.meterEventAdjustments.create({ event_name: 'api_calls', type: 'cancel', cancel: { identifier: first! } });
    expect(adj).toMatchObject({ object: 'billing.meter_event_adjustment', status: 'pending', type: 'cancel', cancel: { identifier: first! } });
    const [w] = (await stripe.billing.meters.listEventSummaries(m.id, { customer: 'cus_A', start_time: t - 3600, end_time: t })).data;
    expect(w!.aggregated_value).toBe(6);
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(6n);
    expect(header(await rejection(stripe.billing.meterEventAdjustments.create({ event_name: 'api_calls', type: 'cancel', cancel: { identifier: first! } })), 'x-fake-stripe-rule')).toBe(
      'adjustment_already_cancelled',
    );
    expect(header(await rejection(stripe.billing.meterEventAdjustments.create({ event_name: 'api_calls', type: 'cancel', cancel: { identifier: 'nope' } })), 'x-fake-stripe-rule')).toBe('adjustment_event_not_found');
    fake.clock.advance(24 * 3600_000 + 1000);
    const late = await rejection(stripe.billing.meterEventAdjustments.create({ event_name: 'api_calls', type: 'cancel', cancel: { identifier: second! } }));
    expect(header(late, 'x-fake-stripe-rule')).toBe('adjustment_window_expired');
  });
});

describe('v2 meter event session, stream and events', () => {
  beforeEach(async () => {
    await apiMeter();
  });

  const streamEvent = (i: number, value = '1', extra: object = {}) => ({ event_name: 'api_calls', identifier: `s-${i}`, payload: { stripe_customer_id: 'cus_A', value }, timestamp: new Date().toISOString(), ...extra });

  it('streams 100 events with a session token (client host override reaches the meter-events apiBase); 101 are rejected', async () => {
    const session = await stripe.v2.billing.meterEventSession.create();
    expect(session).toMatchObject({ object: 'v2.billing.meter_event_session', authentication_token: expect.any(String), livemode: false });
    expect(Date.parse(session.expires_at) - Date.parse(session.created)).toBe(15 * 60_000);
    const streamer = fake.client({ apiKey: session.authentication_token, maxNetworkRetries: 0 });
    const res = await streamer.v2.billing.meterEventStream.create({ events: Array.from({ length: 100 }, (_, i) => streamEvent(i)) });
    expect(res).toEqual({});
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(100n);
    expect(fake.callsByEndpoint()['POST /v2/billing/meter_event_stream']).toBe(1);

    const tooMany = await rejection(streamer.v2.billing.meterEventStream.create({ events: Array.from({ length: 101 }, (_, i) => streamEvent(1000 + i)) }));
    expect(tooMany).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(tooMany).toMatchObject({ statusCode: 400, code: 'invalid_fields' });
    expect(fake.acceptedEvents()).toHaveLength(100);

    const withSecretKey = await rejection(stripe.v2.billing.meterEventStream.create({ events: [streamEvent(2000)] }));
    expect(withSecretKey).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
  });

  it('an expired session token gives TemporarySessionExpiredError (401)', async () => {
    const session = await stripe.v2.billing.meterEventSession.create();
    const streamer = fake.client({ apiKey: session.authentication_token, maxNetworkRetries: 0 });
    await streamer.v2.billing.meterEventStream.create({ events: [streamEvent(1)] });
    fake.clock.advance(15 * 60_000);
    const err = await rejection(streamer.v2.billing.meterEventStream.create({ events: [streamEvent(2)] }));
    expect(err).toBeInstanceOf(Stripe.errors.TemporarySessionExpiredError);
    expect(err).toMatchObject({ statusCode: 401, code: 'billing_meter_event_session_expired', rawType: 'temporary_session_expired' });
    const fresh = await stripe.v2.billing.meterEventSession.create();
    await fake.client({ apiKey: fresh.authentication_token }).v2.billing.meterEventStream.create({ events: [streamEvent(2)] });
    expect(fake.acceptedEvents().map((e) => e.identifier)).toEqual(['s-1', 's-2']);
  });

  it('validates stream events asynchronously: invalid ones are dropped and show up in an error report', async () => {
    const session = await stripe.v2.billing.meterEventSession.create();
    const streamer = fake.client({ apiKey: session.authentication_token });
    await streamer.v2.billing.meterEventStream.create({
      events: [streamEvent(1, '2'), streamEvent(2, '2.5'), streamEvent(3, '1', { event_name: 'ghost' }), streamEvent(1, '9'), streamEvent(4, '1', { timestamp: new Date(Date.now() - 40 * DAY * 1000).toISOString() })],
    });
    expect(fake.acceptedEvents().map((e) => [e.identifier, e.value])).toEqual([['s-1', 2n]]);
    expect(fake.identifierLog().map((a) => a.outcome)).toEqual(['accepted', 'dropped_async', 'dropped_async', 'duplicate', 'dropped_async']);
    expect(fake.asyncErrors().map((e) => e.code)).toEqual(['meter_event_invalid_value', 'no_meter', 'timestamp_too_far_in_past']);
    const [report, noMeter] = fake.webhooks.fromAsyncErrors();
    expect(report!.notification.type).toBe('v1.billing.meter.error_report_triggered');
    expect(noMeter!.notification.type).toBe('v1.billing.meter.no_meter_found');
    const full = (await stripe.v2.core.events.retrieve(report!.notification.id as string)) as Stripe.Events.V1BillingMeterErrorReportTriggeredEvent;
    expect(full.data.reason.error_types.map((t) => [t.code, t.sample_errors.map((s) => s.request.identifier)])).toEqual([
      ['meter_event_invalid_value', ['s-2']],
      ['timestamp_too_far_in_past', ['s-4']],
    ]);
  });

  it('v2 meter_events validates synchronously (duplicate_meter_event, payload_invalid_value)', async () => {
    const ev = await stripe.v2.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'v2-1', payload: { stripe_customer_id: 'cus_A', value: '3' } });
    expect(ev).toMatchObject({ object: 'v2.billing.meter_event', identifier: 'v2-1' });
    const dup = await rejection(stripe.v2.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'v2-1', payload: { stripe_customer_id: 'cus_A', value: '3' } }));
    expect(dup).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(dup).toMatchObject({ statusCode: 400, code: 'duplicate_meter_event' });
    const bad = await rejection(stripe.v2.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'v2-2', payload: { stripe_customer_id: 'cus_A', value: '0.5' } }));
    expect(bad).toMatchObject({ statusCode: 400, code: 'payload_invalid_value' });
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(3n);
  });
});

describe('webhooks (thin events)', () => {
  it('signs like Stripe: stripe-node parses and verifies it, fetches the full event and the meter; tampering fails', async () => {
    const meter = fake.addMeter({ event_name: 'api_calls' });
    const d = fake.webhooks.errorReportTriggered({
      meterId: meter.id,
      errorTypes: [
        { code: 'meter_event_customer_not_found', samples: [{ identifier: 'ev-9', message: 'Customer cus_gone not found' }] },
        { code: 'timestamp_too_far_in_past', samples: [{ identifier: 'ev-10' }, { identifier: 'ev-11' }] },
      ],
    });
    expect(d.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const n = stripe.parseEventNotification(d.payload, d.signature, fake.webhookSecret);
    expect(n.type).toBe('v1.billing.meter.error_report_triggered');
    if (n.type !== 'v1.billing.meter.error_report_triggered') throw new Error('unexpected type');
    const full = await n.fetchEvent();
    expect(full.data.reason.error_count).toBe(3);
    expect(full.data.reason.error_types.map((t) => [t.code, t.error_count, t.sample_errors.map((s) => s.request.identifier)])).toEqual([
      ['meter_event_customer_not_found', 1, ['ev-9']],
      ['timestamp_too_far_in_past', 2, ['ev-10', 'ev-11']],
    ]);
    expect((await n.fetchRelatedObject()).id).toBe(meter.id);
    expect(stripe.webhooks.signature!.verifyHeader(d.payload, d.signature, fake.webhookSecret, 300, undefined)).toBe(true);

    const tampered = d.payload.replace('error_report_triggered', 'no_meter_found');
    expect(() => stripe.parseEventNotification(tampered, d.signature, fake.webhookSecret)).toThrow(Stripe.errors.StripeSignatureVerificationError);
    expect(() => stripe.parseEventNotification(d.payload, d.signature, 'whsec_other')).toThrow(Stripe.errors.StripeSignatureVerificationError);

    // Delivered over HTTP to a receiver that verifies the raw body.
    const received: string[] = [];
    const receiver = http.createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      req.on('end', () => {
        try {
          received.push(stripe.parseEventNotification(raw, req.headers['stripe-signature'] as string, fake.webhookSecret).type);
          res.writeHead(200).end('ok');
        } catch {
          res.writeHead(400).end('bad signature');
        }
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/stripe`;
    expect(await fake.webhooks.deliver(hook, d)).toEqual({ status: 200, body: 'ok' });
    expect((await fake.webhooks.deliver(hook, { ...d, payload: tampered })).status).toBe(400);
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
    expect(received).toEqual(['v1.billing.meter.error_report_triggered']);

    const nm = fake.webhooks.noMeterFound({ errorTypes: [{ code: 'no_meter', samples: [{ identifier: 'ev-12' }] }] });
    const parsed = stripe.parseEventNotification(nm.payload, nm.signature, fake.webhookSecret);
    expect(parsed.type).toBe('v1.billing.meter.no_meter_found');
    const fetched = (await stripe.v2.core.events.retrieve(parsed.id)) as Stripe.Events.V1BillingMeterNoMeterFoundEvent;
    expect(fetched.data.reason.error_types[0]!.sample_errors[0]!.request.identifier).toBe('ev-12');
  });
});

describe('as strict as the real Stripe (defaults)', () => {
  it("applies Stripe's test-mode basic limit (25 operations/s, reads included) to a test key, and not to a live key", async () => {
    const burst = async (client: Stripe) => (await Promise.allSettled(Array.from({ length: 40 }, () => client.billing.meters.list()))).filter((r) => r.status === 'rejected').length;
    expect(await burst(stripe)).toBe(15);
    const live = await startFakeStripe({ apiKey: 'sk_live_fake_meterline' });
    try {
      expect(await burst(live.client({ maxNetworkRetries: 0 }))).toBe(0);
    } finally {
      await live.close();
    }
  });

  it('holds a meter event long enough that a concurrent call for the same customer and meter collides', async () => {
    await apiMeter();
    const results = await Promise.allSettled([stripe.billing.meterEvents.create(event('lat-1', '1')), stripe.billing.meterEvents.create(event('lat-2', '1'))]);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('keeps identifiers unique for 24 h: a reuse within is a duplicate, after it is a new event', async () => {
    await apiMeter();
    await stripe.billing.meterEvents.create(event('ret-1', '1'));
    fake.clock.advance(23 * 3_600_000);
    expect(header(await rejection(stripe.billing.meterEvents.create(event('ret-1', '1'))), 'x-fake-stripe-rule')).toBe('duplicate_identifier');
    fake.clock.advance(2 * 3_600_000);
    await stripe.billing.meterEvents.create(event('ret-1', '1'));
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(2n);
  });

  it('summaries lag behind accepted events until Stripe has processed them', async () => {
    const m = await apiMeter();
    fake.settings.summaryLagMs = 60_000;
    await stripe.billing.meterEvents.create(event('lag-1', '7'));
    const t = Math.ceil(fake.clock.nowSeconds() / 60) * 60 + 60;
    const summed = async () => (await stripe.billing.meters.listEventSummaries(m.id, { customer: 'cus_A', start_time: t - 3600, end_time: t })).data[0]!.aggregated_value;
    expect(await summed()).toBe(0);
    fake.clock.advance(61_000);
    expect(await summed()).toBe(7);
  });

  it('accepts an event for an unknown customer (200), never counts it, and reports it later with error_count and a sample', async () => {
    await apiMeter();
    fake.addCustomers('cus_A');
    for (let i = 0; i < 5; i += 1) {
      await stripe.billing.meterEvents.create({ event_name: 'api_calls', identifier: `ghost-${i}`, payload: { stripe_customer_id: 'cus_GHOST', value: '1' } }, { idempotencyKey: `key-ghost-${i}` });
    }
    await stripe.billing.meterEvents.create(event('known-1', '2'));
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(2n);
    expect(fake.acceptedEvents({ customer: 'cus_GHOST' })).toEqual([]);
    // The identifier is used: a resend answers "already exists".
    expect(header(await rejection(stripe.billing.meterEvents.create({ event_name: 'api_calls', identifier: 'ghost-0', payload: { stripe_customer_id: 'cus_GHOST', value: '1' } })), 'x-fake-stripe-rule')).toBe(
      'duplicate_identifier',
    );
    const [report] = fake.webhooks.fromAsyncErrors();
    const reason = (report!.event.data as { reason: { error_count: number; error_types: { code: string; error_count: number; sample_errors: { request: { identifier: string } }[] }[] } }).reason;
    expect(reason.error_count).toBe(5);
    expect(reason.error_types).toEqual([expect.objectContaining({ code: 'meter_event_customer_not_found', error_count: 5 })]);
    expect(reason.error_types[0]!.sample_errors.map((s) => s.request.identifier)).toEqual(['ghost-0', 'ghost-1', 'ghost-2']);
    const [byKey] = fake.webhooks.fromAsyncErrors({ maxSamples: 1, sampleRequest: 'idempotency_key' });
    expect(JSON.stringify(byKey!.event)).toContain('"identifier":"key-ghost-0"');
  });

  it('lists meters with their formula and payload keys', async () => {
    fake.addMeter({ event_name: 'custom', formula: 'last', customerKey: 'account', valueKey: 'qty' });
    const [m] = (await stripe.billing.meters.list({ status: 'active' })).data;
    expect(m).toMatchObject({ event_name: 'custom', status: 'active', default_aggregation: { formula: 'last' }, customer_mapping: { event_payload_key: 'account' }, value_settings: { event_payload_key: 'qty' } });
  });
});
