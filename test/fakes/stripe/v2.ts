/**
 * v2 billing endpoints as stripe-node 23 calls them (resources/V2/Billing/*.js):
 * - meterEventSession.create()  -> POST /v2/billing/meter_event_session (secret key)
 * - meterEventStream.create()   -> POST /v2/billing/meter_event_stream, apiBase `meter_events`
 *   (meter-events.stripe.com unless the client's `host` is overridden; the override applies to
 *   every apiBase, see Stripe.resolveBaseAddress), authenticated by the session token
 * - meterEvents.create()        -> POST /v2/billing/meter_events (secret key, sync validation)
 * - core.events.retrieve(id) / parseEventNotification(...).fetchEvent() -> GET /v2/core/events/:id
 * All v2 bodies are JSON (stripe-node sends application/json for paths starting with /v2).
 */
import { randomUUID } from 'node:crypto';
import type { HandlerCtx, HandlerResult } from './context';
import { FakeStripeError, v2Error } from './errors';
import { SCHEMAS, validateV2 } from './openapi';
import { checkMeterEvent, RULES } from './rules';
import { rfc3339, rid, type AcceptedEvent } from './state';

interface V2Event {
  event_name: string;
  identifier?: string;
  payload: Record<string, string>;
  timestamp?: string;
}

const toSeconds = (ts: string | undefined, nowSec: number): number => (ts === undefined ? nowSec : Math.floor(Date.parse(ts) / 1000));

/** POST /v2/billing/meter_event_session: a token that lives `sessionTtlMs` (15 min by default). */
export function createSession(ctx: HandlerCtx): HandlerResult {
  validateV2(ctx.body, { type: 'object', properties: {} });
  const now = ctx.clock.now();
  const s = { id: rid('mes_test_', 18), token: rid('mes_tok_test_', 24), createdAt: now, expiresAt: now + ctx.settings.sessionTtlMs };
  ctx.state.sessions.set(s.token, s);
  return {
    status: 200,
    body: { id: s.id, object: 'v2.billing.meter_event_session', authentication_token: s.token, created: rfc3339(s.createdAt), expires_at: rfc3339(s.expiresAt), livemode: false },
  };
}

function record(ctx: HandlerCtx, e: V2Event, identifier: string, meterId: string, customer: string, value: bigint, rawValue: string, timestamp: number, via: 'v2' | 'stream'): AcceptedEvent {
  return ctx.state.recordEvent({ identifier, eventName: e.event_name, meterId, customer, value, rawValue, timestamp, receivedAt: ctx.clock.now(), via, payload: e.payload });
}

/**
 * POST /v2/billing/meter_event_stream. Synchronous: schema and "up to 100 events per request".
 * Everything else is asynchronous at Stripe ("Events are processed asynchronously, including
 * validation"): invalid events are dropped and kept in `asyncErrors` (for error-report webhooks),
 * a reused identifier is dropped, the response is `{}` either way.
 */
export function meterEventStream(ctx: HandlerCtx): HandlerResult {
  const events = (ctx.body as { events?: unknown }).events;
  if (Array.isArray(events) && events.length > RULES.maxStreamEvents) {
    throw v2Error(400, 'invalid_fields', `events: at most ${RULES.maxStreamEvents} events are allowed per request, got ${events.length}.`, 'stream_too_many_events');
  }
  const p = validateV2<{ events: V2Event[] }>(ctx.body, SCHEMAS.meterEventStream);
  const nowSec = ctx.clock.nowSeconds();
  p.events.forEach((e, i) => {
    const attempt = ctx.attempts[i]!;
    const identifier = e.identifier ?? randomUUID();
    if (e.identifier === undefined) {
      attempt.identifier = identifier;
      attempt.generated = true;
    }
    const timestamp = toSeconds(e.timestamp, nowSec);
    const meter = ctx.state.meterFor(e.event_name);
    const checked = checkMeterEvent(meter, e.event_name, e.payload, timestamp, nowSec);
    if ('rule' in checked) {
      attempt.outcome = 'dropped_async';
      attempt.rule = checked.rule;
      ctx.state.asyncErrors.push({ code: checked.reportCode, message: checked.message, identifier, eventName: e.event_name, meterId: meter?.id ?? null, at: ctx.clock.now() });
      return;
    }
    if (ctx.state.identifierTaken(identifier, ctx.clock.now(), ctx.settings.identifierRetentionMs)) {
      attempt.outcome = 'duplicate';
      attempt.rule = 'duplicate_identifier';
      return;
    }
    if (ctx.settings.knownCustomers && !ctx.settings.knownCustomers.has(checked.customer)) {
      attempt.outcome = 'dropped_async';
      attempt.rule = 'customer_not_found';
      ctx.state.dropAsync({ code: 'meter_event_customer_not_found', message: `No customer with id '${checked.customer}' exists.`, identifier, eventName: e.event_name, meterId: checked.meter.id, at: ctx.clock.now() });
      return;
    }
    record(ctx, e, identifier, checked.meter.id, checked.customer, checked.value, checked.rawValue, timestamp, 'stream');
    attempt.outcome = 'accepted';
  });
  return { status: 200, body: {} };
}

/**
 * POST /v2/billing/meter_events: synchronous validation with the documented codes (400
 * archived_meter, duplicate_meter_event, no_meter, payload_invalid_value,
 * payload_no_customer_defined, payload_no_value_defined; 409 too_many_concurrent_requests).
 */
export async function createV2MeterEvent(ctx: HandlerCtx): Promise<HandlerResult> {
  const attempt = ctx.attempts[0]!;
  const e = validateV2<V2Event>(ctx.body, SCHEMAS.v2MeterEventCreate);
  const nowSec = ctx.clock.nowSeconds();
  const timestamp = toSeconds(e.timestamp, nowSec);
  const checked = checkMeterEvent(ctx.state.meterFor(e.event_name), e.event_name, e.payload, timestamp, nowSec);
  if ('rule' in checked) throw v2Error(400, checked.v2Code, checked.message, checked.rule);
  const identifier = e.identifier ?? randomUUID();
  if (e.identifier === undefined) {
    attempt.identifier = identifier;
    attempt.generated = true;
  }
  if (ctx.state.identifierTaken(identifier, ctx.clock.now(), ctx.settings.identifierRetentionMs)) {
    attempt.outcome = 'duplicate';
    throw v2Error(400, 'duplicate_meter_event', 'A meter event with a duplicate identifier has already been submitted.', 'duplicate_identifier');
  }
  const key = `${checked.customer}\u0000${e.event_name}`;
  if (ctx.state.locks.has(key)) {
    attempt.outcome = 'conflict';
    throw v2Error(409, 'too_many_concurrent_requests', 'Cannot create multiple usage events for the same customer, meter concurrently.', 'concurrent_customer_meter');
  }
  ctx.state.locks.add(key);
  ctx.state.reserved.add(identifier);
  try {
    await ctx.sleep(ctx.settings.latencyMs);
    const ev = record(ctx, e, identifier, checked.meter.id, checked.customer, checked.value, checked.rawValue, timestamp, 'v2');
    attempt.outcome = 'accepted';
    return {
      status: 200,
      body: { object: 'v2.billing.meter_event', created: rfc3339(ev.receivedAt), event_name: e.event_name, identifier, livemode: false, payload: e.payload, timestamp: rfc3339(timestamp * 1000) },
    };
  } finally {
    ctx.state.locks.delete(key);
    ctx.state.reserved.delete(identifier);
  }
}

/** GET /v2/core/events/:id: the full event behind a thin notification. */
export function retrieveCoreEvent(ctx: HandlerCtx): HandlerResult {
  const id = ctx.pathParams[0]!;
  const ev = ctx.state.coreEvents.get(id);
  if (!ev) throw new FakeStripeError(404, { type: 'invalid_request_error', code: 'resource_missing', message: `No such event: '${id}'` }, {}, 'resource_missing');
  return { status: 200, body: ev };
}

