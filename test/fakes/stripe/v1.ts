/** v1 billing endpoints: meters, meter events, adjustments, event summaries. */
import { randomUUID } from 'node:crypto';
import type { HandlerCtx, HandlerResult } from './context';
import { FakeStripeError, invalidRequest, LOCK_TIMEOUT_MESSAGE, resourceMissing } from './errors';
import { SCHEMAS, validateV1 } from './openapi';
import { alignmentError, checkMeterEvent, RULES, summarize } from './rules';
import { rid, type FakeStripeState, type Meter } from './state';

const ok = (body: unknown): HandlerResult => ({ status: 200, body });

interface ListParams {
  limit?: number;
  starting_after?: string;
  ending_before?: string;
}

/** Stripe list pagination: limit 1..100 (default 10), cursors are object ids. */
function list<T extends { id: string }>(items: T[], p: ListParams, url: string): HandlerResult {
  const limit = p.limit ?? 10;
  if (limit < 1 || limit > 100) throw invalidRequest(`Invalid limit: must be between 1 and 100`, { param: 'limit', rule: 'list_limit' });
  let from = 0;
  let to = items.length;
  if (p.starting_after !== undefined) {
    const i = items.findIndex((x) => x.id === p.starting_after);
    if (i === -1) throw invalidRequest(`Invalid starting_after: ${p.starting_after} is not in this list`, { param: 'starting_after', rule: 'list_cursor' });
    from = i + 1;
  } else if (p.ending_before !== undefined) {
    const i = items.findIndex((x) => x.id === p.ending_before);
    if (i === -1) throw invalidRequest(`Invalid ending_before: ${p.ending_before} is not in this list`, { param: 'ending_before', rule: 'list_cursor' });
    to = i;
    from = Math.max(0, to - limit);
  }
  const data = items.slice(from, Math.min(to, from + limit));
  const hasMore = p.ending_before !== undefined ? from > 0 : from + data.length < to;
  return ok({ object: 'list', data, has_more: hasMore, url });
}

function getMeter(ctx: HandlerCtx): Meter {
  const id = ctx.pathParams[0]!;
  const m = ctx.state.meters.get(id);
  if (!m) throw resourceMissing('billing meter', id);
  return m;
}

export interface MeterParams {
  event_name: string;
  display_name: string;
  default_aggregation: { formula: Meter['default_aggregation']['formula'] };
  customer_mapping?: { type: 'by_id'; event_payload_key: string };
  value_settings?: { event_payload_key: string };
  event_time_window?: 'hour' | 'day';
}

/**
 * A new active meter (defaults: customer key `stripe_customer_id`, value key `value`). Event names
 * are unique across meters ("You can only use an event name with a single meter").
 */
export function addMeter(state: FakeStripeState, p: MeterParams, nowSec: number): Meter {
  const taken = state.meterFor(p.event_name);
  if (taken) throw invalidRequest(`A meter with event_name '${p.event_name}' already exists (${taken.id}); an event name can be used with a single meter only.`, { param: 'event_name', rule: 'meter_event_name_taken' });
  const meter: Meter = {
    id: rid('mtr_test_', 18),
    object: 'billing.meter',
    created: nowSec,
    customer_mapping: p.customer_mapping ?? { type: 'by_id', event_payload_key: 'stripe_customer_id' },
    default_aggregation: { formula: p.default_aggregation.formula },
    display_name: p.display_name,
    event_name: p.event_name,
    event_time_window: p.event_time_window ?? null,
    livemode: false,
    status: 'active',
    status_transitions: { deactivated_at: null },
    updated: nowSec,
    value_settings: p.value_settings ?? { event_payload_key: 'value' },
  };
  state.meters.set(meter.id, meter);
  return meter;
}

/** POST /v1/billing/meters */
export function createMeter(ctx: HandlerCtx): HandlerResult {
  return ok(addMeter(ctx.state, validateV1<MeterParams>(ctx.body, SCHEMAS.meterCreate), ctx.clock.nowSeconds()));
}

/** GET /v1/billing/meters: newest first, optional status filter. */
export function listMeters(ctx: HandlerCtx): HandlerResult {
  const p = validateV1<ListParams & { status?: 'active' | 'inactive' }>(ctx.query, SCHEMAS.meterList);
  const all = [...ctx.state.meters.values()].reverse().filter((m) => !p.status || m.status === p.status);
  return list(all, p, '/v1/billing/meters');
}

export function retrieveMeter(ctx: HandlerCtx): HandlerResult {
  validateV1(ctx.query, SCHEMAS.meterRetrieve);
  return ok(getMeter(ctx));
}

/** POST /v1/billing/meters/:id: "Meters are immutable, with the exception of the display name." */
export function updateMeter(ctx: HandlerCtx): HandlerResult {
  const m = getMeter(ctx);
  const p = validateV1<{ display_name?: string }>(ctx.body, SCHEMAS.meterUpdate);
  if (p.display_name !== undefined) m.display_name = p.display_name;
  m.updated = ctx.clock.nowSeconds();
  return ok(m);
}

export function setMeterStatus(status: 'active' | 'inactive') {
  return (ctx: HandlerCtx): HandlerResult => {
    const m = getMeter(ctx);
    validateV1(ctx.body, SCHEMAS.meterStatus);
    if (m.status === status) throw invalidRequest(`The meter ${m.id} is already ${status}.`, { rule: 'meter_status' });
    m.status = status;
    m.status_transitions.deactivated_at = status === 'inactive' ? ctx.clock.nowSeconds() : null;
    m.updated = ctx.clock.nowSeconds();
    return ok(m);
  };
}

const lockKey = (customer: string, eventName: string): string => `${customer}\u0000${eventName}`;

/**
 * POST /v1/billing/meter_events. Schema (openapi.ts), then the meter-event rules (rules.ts), then
 * identifier uniqueness, then one concurrent call per customer per meter. Rejected synchronously
 * here although Stripe reports some of these failures (no meter, value, timestamp) asynchronously
 * through error-report webhooks as well: a 400 here is the strict reading.
 */
export async function createMeterEvent(ctx: HandlerCtx): Promise<HandlerResult> {
  const attempt = ctx.attempts[0]!;
  const p = validateV1<{ event_name: string; identifier?: string; payload: Record<string, string>; timestamp?: number }>(ctx.body, SCHEMAS.meterEventCreate);
  const nowSec = ctx.clock.nowSeconds();
  const timestamp = p.timestamp ?? nowSec; // "Defaults to current timestamp if not specified."
  const checked = checkMeterEvent(ctx.state.meterFor(p.event_name), p.event_name, p.payload, timestamp, nowSec);
  if ('rule' in checked) throw invalidRequest(checked.message, { param: checked.param, rule: checked.rule });
  // "If you don't specify an identifier, we auto-generate one for you."
  const identifier = p.identifier ?? randomUUID();
  if (p.identifier === undefined) {
    attempt.identifier = identifier;
    attempt.generated = true;
  }
  if (ctx.state.identifierTaken(identifier, ctx.clock.now(), ctx.settings.identifierRetentionMs)) {
    attempt.outcome = 'duplicate';
    // notes/stripe.md: 400 invalid_request_error, this message, `stripe-should-retry: false`.
    throw invalidRequest(`An event already exists with identifier ${identifier}`, { param: 'identifier', rule: 'duplicate_identifier', headers: { 'stripe-should-retry': 'false' } });
  }
  const key = lockKey(checked.customer, p.event_name);
  if (ctx.state.locks.has(key)) {
    attempt.outcome = 'conflict';
    const { status, code } = ctx.settings.concurrency;
    throw new FakeStripeError(status, { type: 'invalid_request_error', code, message: LOCK_TIMEOUT_MESSAGE }, {}, 'concurrent_customer_meter');
  }
  ctx.state.locks.add(key);
  ctx.state.reserved.add(identifier);
  try {
    await ctx.sleep(ctx.settings.latencyMs);
    if (ctx.settings.knownCustomers && !ctx.settings.knownCustomers.has(checked.customer)) {
      // Stripe checks the customer asynchronously: 200 now, an error report later, never counted.
      attempt.outcome = 'dropped_async';
      attempt.rule = 'customer_not_found';
      ctx.state.dropAsync({ code: 'meter_event_customer_not_found', message: `No customer with id '${checked.customer}' exists.`, identifier, eventName: p.event_name, meterId: checked.meter.id, at: ctx.clock.now(), ...(ctx.idempotencyKey ? { idempotencyKey: ctx.idempotencyKey } : {}) });
      return ok({ object: 'billing.meter_event', created: ctx.clock.nowSeconds(), event_name: p.event_name, identifier, livemode: false, payload: p.payload, timestamp });
    }
    const ev = ctx.state.recordEvent({
      identifier,
      eventName: p.event_name,
      meterId: checked.meter.id,
      customer: checked.customer,
      value: checked.value,
      rawValue: checked.rawValue,
      timestamp,
      receivedAt: ctx.clock.now(),
      via: 'v1',
      payload: p.payload,
    });
    attempt.outcome = 'accepted';
    return ok({ object: 'billing.meter_event', created: Math.floor(ev.receivedAt / 1000), event_name: p.event_name, identifier, livemode: false, payload: p.payload, timestamp });
  } finally {
    ctx.state.locks.delete(key);
    ctx.state.reserved.delete(identifier);
  }
}

/**
 * POST /v1/billing/meter_event_adjustments: cancel one event by identifier, only within 24 h of
 * Stripe receiving it. Stripe answers `status: pending` and applies it asynchronously; the fake
 * applies it at once (cancelled events stop counting in summaries and totals).
 */
export function createMeterEventAdjustment(ctx: HandlerCtx): HandlerResult {
  const p = validateV1<{ event_name: string; type: 'cancel'; cancel?: { identifier?: string } }>(ctx.body, SCHEMAS.meterEventAdjustmentCreate);
  const identifier = p.cancel?.identifier;
  if (!identifier) throw invalidRequest('Missing required param: cancel[identifier].', { param: 'cancel[identifier]', code: 'parameter_missing', rule: 'schema_missing' });
  if (!ctx.state.meterFor(p.event_name)) throw invalidRequest(`No active meter was found for event_name '${p.event_name}'.`, { param: 'event_name', rule: 'no_meter' });
  const ev = ctx.state.byIdentifier.get(identifier);
  if (!ev || ev.eventName !== p.event_name) {
    throw invalidRequest(`No meter event with identifier ${identifier} was found for event_name '${p.event_name}'.`, { param: 'cancel[identifier]', rule: 'adjustment_event_not_found' });
  }
  if (ev.cancelledAt !== null) throw invalidRequest(`The meter event with identifier ${identifier} has already been cancelled.`, { param: 'cancel[identifier]', rule: 'adjustment_already_cancelled' });
  if (ctx.clock.now() - ev.receivedAt > RULES.cancelWindowMs) {
    throw invalidRequest(`The meter event with identifier ${identifier} can no longer be cancelled: events can only be cancelled within 24 hours of being received.`, {
      param: 'cancel[identifier]',
      rule: 'adjustment_window_expired',
    });
  }
  ev.cancelledAt = ctx.clock.now();
  return ok({ object: 'billing.meter_event_adjustment', livemode: false, status: 'pending', event_name: p.event_name, type: 'cancel', cancel: { identifier } });
}

/** GET /v1/billing/meters/:id/event_summaries. */
export function listEventSummaries(ctx: HandlerCtx): HandlerResult {
  const meter = getMeter(ctx);
  const p = validateV1<ListParams & { customer: string; start_time: number; end_time: number; value_grouping_window?: 'hour' | 'day' }>(ctx.query, SCHEMAS.eventSummaries);
  const bad = alignmentError(p.start_time, p.end_time, p.value_grouping_window);
  if (bad) throw invalidRequest(bad.message, { param: bad.param, rule: 'summary_alignment' });
  // Processing is asynchronous: an event counts in summaries only summaryLagMs after it was accepted.
  const processed = ctx.state.events.filter((e) => e.receivedAt <= ctx.clock.now() - ctx.settings.summaryLagMs);
  const windows = summarize(processed, meter, p.customer, p.start_time, p.end_time, p.value_grouping_window);
  const data = windows.map((w) => ({
    id: `mtrusg_test_${Buffer.from(`${meter.id}:${p.customer}:${w.start}:${w.end}`).toString('base64url')}`,
    object: 'billing.meter_event_summary',
    aggregated_value: w.value,
    end_time: w.end,
    livemode: false,
    meter: meter.id,
    start_time: w.start,
  }));
  return list(data, p, `/v1/billing/meters/${meter.id}/event_summaries`);
}
