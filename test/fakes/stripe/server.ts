/**
 * The fake Stripe HTTP server: routing, authentication, Stripe's idempotency semantics, global
 * rate limiting, fault injection, call accounting, and a configured stripe-node client.
 *
 * Request pipeline, in order: log the meter events the request carries (every identifier ever
 * sent, whatever happens next) -> authenticate -> global rate limit -> injected fault -> the
 * Idempotency-Key (replay / conflict) -> the endpoint -> store the result for replay -> answer
 * (or, for "timeout after accept", drop the connection instead).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import type { FakeStripeSettings, Handler, HandlerCtx } from './context';
import { FakeStripeError, invalidRequest, RATE_LIMIT_MESSAGE } from './errors';
import { FaultQueue, faultLabel, statusFaultError, type FaultSpec } from './faults';
import { parseForm } from './form';
import type { ClientOptions, FakeStripe, FakeStripeOptions } from './api';
import { acceptedEvents, canonical, countCalls, identifierConflicts, totals } from './inspect';
import {
  FakeClock,
  FakeStripeState,
  rid,
  type AttemptOutcome,
  type CallRecord,
  type IdentifierAttempt,
  type MeterEventSession,
  type Via,
} from './state';
import { RULES } from './rules';
import * as v1 from './v1';
import * as v2 from './v2';
import { buildMeterErrorEvent, reportsFromAsyncErrors, signPayload, type MeterErrorEventType, type MeterErrorReportInput, type WebhookDelivery } from './webhooks';

export type { ClientOptions, FakeStripe, FakeStripeOptions };

/** Stripe's basic rate limit in test mode and sandboxes: 25 operations/s, reads included. */
export const TEST_MODE_BASIC_LIMIT = 25;
/** Live mode: meter events, 1000 calls/s. */
export const LIVE_METER_EVENT_LIMIT = 1000;
/** Time a meter event holds its customer+meter lock: long enough for concurrent calls to collide. */
export const DEFAULT_LATENCY_MS = 25;
export const DEFAULT_SUMMARY_LAG_MS = 1_000;

interface Route {
  method: string;
  re: RegExp;
  endpoint: string;
  handler: Handler;
  auth: 'secret' | 'session';
  meterEvents?: Via;
}

const ID = '([^/]+)';
const ROUTES: Route[] = [
  { method: 'POST', re: /^\/v1\/billing\/meters$/, endpoint: 'POST /v1/billing/meters', handler: v1.createMeter, auth: 'secret' },
  { method: 'GET', re: /^\/v1\/billing\/meters$/, endpoint: 'GET /v1/billing/meters', handler: v1.listMeters, auth: 'secret' },
  { method: 'GET', re: new RegExp(`^/v1/billing/meters/${ID}$`), endpoint: 'GET /v1/billing/meters/:id', handler: v1.retrieveMeter, auth: 'secret' },
  { method: 'POST', re: new RegExp(`^/v1/billing/meters/${ID}$`), endpoint: 'POST /v1/billing/meters/:id', handler: v1.updateMeter, auth: 'secret' },
  { method: 'POST', re: new RegExp(`^/v1/billing/meters/${ID}/deactivate$`), endpoint: 'POST /v1/billing/meters/:id/deactivate', handler: v1.setMeterStatus('inactive'), auth: 'secret' },
  { method: 'POST', re: new RegExp(`^/v1/billing/meters/${ID}/reactivate$`), endpoint: 'POST /v1/billing/meters/:id/reactivate', handler: v1.setMeterStatus('active'), auth: 'secret' },
  { method: 'GET', re: new RegExp(`^/v1/billing/meters/${ID}/event_summaries$`), endpoint: 'GET /v1/billing/meters/:id/event_summaries', handler: v1.listEventSummaries, auth: 'secret' },
  { method: 'POST', re: /^\/v1\/billing\/meter_events$/, endpoint: 'POST /v1/billing/meter_events', handler: v1.createMeterEvent, auth: 'secret', meterEvents: 'v1' },
  { method: 'POST', re: /^\/v1\/billing\/meter_event_adjustments$/, endpoint: 'POST /v1/billing/meter_event_adjustments', handler: v1.createMeterEventAdjustment, auth: 'secret' },
  { method: 'POST', re: /^\/v2\/billing\/meter_event_session$/, endpoint: 'POST /v2/billing/meter_event_session', handler: v2.createSession, auth: 'secret' },
  { method: 'POST', re: /^\/v2\/billing\/meter_event_stream$/, endpoint: 'POST /v2/billing/meter_event_stream', handler: v2.meterEventStream, auth: 'session', meterEvents: 'stream' },
  { method: 'POST', re: /^\/v2\/billing\/meter_events$/, endpoint: 'POST /v2/billing/meter_events', handler: v2.createV2MeterEvent, auth: 'secret', meterEvents: 'v2' },
  { method: 'GET', re: new RegExp(`^/v2/core/events/${ID}$`), endpoint: 'GET /v2/core/events/:id', handler: v2.retrieveCoreEvent, auth: 'secret' },
];

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The meter events a request carries, read leniently (before any validation). */
function eventsOf(via: Via, body: Record<string, unknown>): Array<Record<string, unknown>> {
  if (via === 'stream') return Array.isArray(body.events) ? body.events.map((e) => (e !== null && typeof e === 'object' ? (e as Record<string, unknown>) : {})) : [];
  return [body];
}

function attemptFrom(e: Record<string, unknown>, via: Via, requestId: string, idempotencyKey: string | undefined, at: number, settings: { customerKeyFor(eventName: unknown): string; valueKeyFor(eventName: unknown): string }): IdentifierAttempt {
  const payload = e.payload !== null && typeof e.payload === 'object' ? (e.payload as Record<string, unknown>) : {};
  const str = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
  const ts = e.timestamp;
  return {
    identifier: str(e.identifier) ?? null,
    generated: false,
    eventName: str(e.event_name),
    customer: str(payload[settings.customerKeyFor(e.event_name)]),
    value: str(payload[settings.valueKeyFor(e.event_name)]),
    timestamp: typeof ts === 'string' && via === 'v1' && /^-?\d+$/.test(ts) ? Number(ts) : typeof ts === 'string' || typeof ts === 'number' ? ts : undefined,
    via,
    requestId,
    idempotencyKey,
    at,
    outcome: 'pending',
  };
}

export async function startFakeStripe(opts: FakeStripeOptions = {}): Promise<FakeStripe> {
  const apiKey = opts.apiKey ?? 'sk_test_fake_meterline';
  const clock = new FakeClock(opts.now);
  const state = new FakeStripeState();
  const settings: FakeStripeSettings = {
    apiKeys: new Set([apiKey]),
    sessionTtlMs: opts.sessionTtlMs ?? 15 * 60_000,
    latencyMs: opts.latencyMs ?? DEFAULT_LATENCY_MS,
    concurrency: { status: opts.concurrency?.status ?? 429, code: opts.concurrency?.code ?? 'lock_timeout' },
    rateLimitPerSecond: opts.rateLimitPerSecond !== undefined ? opts.rateLimitPerSecond : /^(sk|rk)_live_/.test(apiKey) ? LIVE_METER_EVENT_LIMIT : TEST_MODE_BASIC_LIMIT,
    identifierRetentionMs: opts.identifierRetentionMs !== undefined ? opts.identifierRetentionMs : RULES.identifierUniqueMs,
    summaryLagMs: opts.summaryLagMs ?? DEFAULT_SUMMARY_LAG_MS,
    knownCustomers: opts.knownCustomers ? new Set(opts.knownCustomers) : null,
    webhookSecret: opts.webhookSecret ?? 'whsec_fake_meterline_secret',
  };
  const faults = new FaultQueue();
  const recentCalls: number[] = [];
  /** The limit recentCalls was counted under: a new limit starts a new window. */
  let countedLimit: number | null = null;
  const sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  const hung = new Set<http.ServerResponse>();
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    ms <= 0 || closed
      ? Promise.resolve()
      : new Promise((resolve) => {
          const entry = {
            timer: setTimeout(() => {
              sleeps.delete(entry);
              resolve();
            }, ms),
            resolve,
          };
          sleeps.add(entry);
        });

  const keysFor = {
    customerKeyFor: (n: unknown) => (typeof n === 'string' ? state.meterFor(n)?.customer_mapping.event_payload_key : undefined) ?? 'stripe_customer_id',
    valueKeyFor: (n: unknown) => (typeof n === 'string' ? state.meterFor(n)?.value_settings.event_payload_key : undefined) ?? 'value',
  };

  /** Stripe auth: `Authorization: Bearer <secret key>`; the stream wants a live session token instead. */
  function authenticate(route: Route, req: http.IncomingMessage): MeterEventSession | undefined {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const unauthorized = (message: string) => new FakeStripeError(401, { type: 'invalid_request_error', message }, {}, 'authentication');
    if (!m) throw unauthorized("You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').");
    const key = m[1]!;
    if (route.auth === 'session') {
      const s = state.sessions.get(key);
      if (!s) throw unauthorized('Invalid meter event session token: create one with POST /v2/billing/meter_event_session.');
      if (clock.now() >= s.expiresAt) {
        // v2.error.billing_meter_event_session_expired: 401, type temporary_session_expired -> stripe-node TemporarySessionExpiredError.
        throw new FakeStripeError(
          401,
          { type: 'temporary_session_expired', code: 'billing_meter_event_session_expired', message: 'The meter event session has expired. Create a new session.', doc_url: 'https://docs.stripe.com/error-codes#billing-meter-event-session-expired' },
          {},
          'session_expired',
        );
      }
      return s;
    }
    if (!settings.apiKeys.has(key)) throw unauthorized(`Invalid API Key provided: ${key.slice(0, 8)}****${key.slice(-4)}`);
    return undefined;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = rid('req_', 10);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const isV2 = path.startsWith('/v2/');
    const idempotencyKey = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
    const match = ROUTES.map((r) => ({ r, m: r.method === method ? r.re.exec(path) : null })).find((x) => x.m);
    const call: CallRecord = { seq: state.nextSeq(), at: clock.now(), method, path, endpoint: match?.r.endpoint ?? `${method} ${path}`, status: null, outcome: 'answered', requestId, idempotencyKey, replayed: false };
    state.calls.push(call);
    const raw = await readBody(req);
    let attempts: IdentifierAttempt[] = [];
    let fault: FaultSpec | undefined;
    let replay: { status: number; body: string; headers: Record<string, string>; requestId: string } | undefined;
    let status = 200;
    let body = '';
    let headers: Record<string, string> = {};
    let rule: string | undefined;
    let finalOutcome: AttemptOutcome = 'rejected';
    let store = false;
    let fingerprint = '';
    let ownsKey = false;
    try {
      if (!match) throw new FakeStripeError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` }, {}, 'unknown_route');
      const route = match.r;
      let parsed: Record<string, unknown>;
      if (isV2) {
        try {
          parsed = raw.trim() === '' ? {} : (JSON.parse(raw) as Record<string, unknown>);
        } catch {
          throw new FakeStripeError(400, { type: 'invalid_request_error', message: 'Invalid JSON in the request body.' }, {}, 'json');
        }
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new FakeStripeError(400, { type: 'invalid_request_error', message: 'The request body must be a JSON object.' }, {}, 'json');
      } else parsed = parseForm(raw);
      const query = parseForm(url.search.slice(1));
      if (route.meterEvents) {
        attempts = eventsOf(route.meterEvents, parsed).map((e) => attemptFrom(e, route.meterEvents!, requestId, idempotencyKey, clock.now(), keysFor));
        state.attempts.push(...attempts);
      }
      finalOutcome = 'unauthenticated';
      const session = authenticate(route, req);
      if (settings.rateLimitPerSecond !== countedLimit) {
        recentCalls.length = 0;
        countedLimit = settings.rateLimitPerSecond;
      }
      if (settings.rateLimitPerSecond !== null) {
        const t = performance.now();
        while (recentCalls.length && recentCalls[0]! <= t - 1000) recentCalls.shift();
        if (recentCalls.length >= settings.rateLimitPerSecond) {
          finalOutcome = 'rate_limited';
          throw new FakeStripeError(429, { type: 'invalid_request_error', code: 'rate_limit', message: RATE_LIMIT_MESSAGE }, {}, 'global_rate_limit');
        }
        recentCalls.push(t);
      }
      fault = faults.take(method, path, attempts);
      if (fault) call.fault = faultLabel(fault);
      if (fault?.kind === 'latency') await sleep(fault.ms);
      if (fault?.kind === 'reset-before-accept') {
        finalOutcome = 'connection_dropped';
        throw new FakeStripeError(0, { message: 'reset' }); // status 0: destroy the connection below
      }
      if (fault?.kind === 'status' && fault.stage !== 'after-accept') {
        finalOutcome = 'fault';
        const e = statusFaultError(fault);
        throw new FakeStripeError(fault.status, e.body, e.headers, `fault_${fault.status}`);
      }
      // Idempotency (https://docs.stripe.com/api/idempotent_requests): keys up to 255 chars; a
      // key reused with other parameters is an error; a finished request is replayed (headers
      // `Idempotent-Replayed: true`, `Original-Request`); results are saved only once the
      // endpoint started executing (not for validation failures or concurrency conflicts).
      if (method === 'POST' && idempotencyKey !== undefined) {
        if (idempotencyKey.length > 255) throw invalidRequest('Idempotency-Key must be at most 255 characters long.', { rule: 'idempotency_key_length' });
        fingerprint = `${method} ${path} ${canonical(parsed)}`;
        const prior = state.idempotency.get(idempotencyKey);
        if (prior && prior.fingerprint !== fingerprint) {
          finalOutcome = 'idempotency_error';
          throw new FakeStripeError(
            400,
            { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.` },
            {},
            'idempotency_params_mismatch',
          );
        }
        if (prior && 'inFlight' in prior) {
          finalOutcome = 'conflict';
          throw new FakeStripeError(409, { type: 'invalid_request_error', code: 'idempotency_key_in_use', message: 'There is currently another in-progress request using this Idempotency-Key. Please try again later.' }, {}, 'idempotency_key_in_use');
        }
        if (prior) replay = prior;
        else {
          state.idempotency.set(idempotencyKey, { inFlight: true, fingerprint });
          ownsKey = true;
        }
      }
      if (replay) {
        finalOutcome = 'idempotent_replay';
        call.replayed = true;
        ({ status, body } = replay);
        headers = { ...replay.headers, 'idempotent-replayed': 'true', 'original-request': replay.requestId };
      } else {
        const ctx: HandlerCtx = { state, clock, settings, method, path, pathParams: match.m!.slice(1).map(decodeURIComponent), body: parsed, query, requestId, idempotencyKey, attempts, sleep, ...(session ? { session } : {}) };
        finalOutcome = 'rejected';
        const result = await match.r.handler(ctx);
        status = result.status;
        body = JSON.stringify(result.body);
        headers = result.headers ?? {};
        store = true;
        if (fault?.kind === 'status') {
          const e = statusFaultError(fault);
          status = fault.status;
          body = JSON.stringify({ error: e.body });
          headers = e.headers;
          rule = `fault_${fault.status}`;
        }
      }
    } catch (err) {
      if (err instanceof FakeStripeError) {
        status = err.status;
        body = JSON.stringify({ error: err.body });
        headers = { ...err.headers };
        rule = err.rule;
      } else {
        status = 500;
        body = JSON.stringify({ error: { type: 'api_error', message: `fake Stripe bug: ${err instanceof Error ? err.stack : String(err)}` } });
      }
    }
    if (ownsKey && idempotencyKey !== undefined) {
      if (store) state.idempotency.set(idempotencyKey, { fingerprint, status, body, headers, requestId });
      else state.idempotency.delete(idempotencyKey); // nothing executed: the key stays free for a retry
    }
    for (const a of attempts) {
      if (a.outcome !== 'pending') continue;
      a.outcome = finalOutcome;
      if (rule !== undefined) a.rule = rule;
    }
    if (rule !== undefined) call.rule = rule;
    if (status === 0 || closed) {
      call.outcome = 'reset';
      req.socket.destroy();
      return;
    }
    const out: Record<string, string> = {
      'content-type': 'application/json',
      'request-id': requestId,
      'stripe-version': typeof req.headers['stripe-version'] === 'string' ? req.headers['stripe-version'] : Stripe.API_VERSION,
      ...(idempotencyKey !== undefined ? { 'idempotency-key': idempotencyKey } : {}),
      ...headers,
      ...(rule !== undefined ? { 'x-fake-stripe-rule': rule } : {}),
    };
    if (fault?.kind === 'timeout-after-accept') {
      const mode = fault.mode ?? 'reset';
      call.outcome = mode;
      for (const a of attempts) if (a.outcome === 'pending') a.outcome = 'connection_dropped';
      if (mode === 'reset') req.socket.destroy();
      else if (mode === 'hang') hung.add(res);
      else {
        res.writeHead(status, { ...out, 'content-length': String(Buffer.byteLength(body)) });
        res.write(body.slice(0, Math.floor(body.length / 2)), () => res.destroy());
      }
      return;
    }
    call.status = status;
    res.writeHead(status, out);
    res.end(body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'api_error', message: `fake Stripe bug: ${String(err)}` } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  function deliveryOf(type: MeterErrorEventType, input: MeterErrorReportInput): WebhookDelivery {
    const { event, notification } = buildMeterErrorEvent(type, input, clock.now());
    state.coreEvents.set(event.id as string, event);
    const payload = JSON.stringify(notification, null, 2);
    const signature = signPayload(payload, settings.webhookSecret, clock.nowSeconds());
    return { event, notification, payload, signature, headers: { 'content-type': 'application/json', 'stripe-signature': signature } };
  }

  const fake: FakeStripe = {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    apiKey,
    webhookSecret: settings.webhookSecret,
    clock,
    settings,
    state,
    client: (o: ClientOptions = {}) =>
      new Stripe(o.apiKey ?? apiKey, {
        host: '127.0.0.1',
        port,
        protocol: 'http',
        telemetry: false,
        ...(o.maxNetworkRetries !== undefined ? { maxNetworkRetries: o.maxNetworkRetries } : {}),
        ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      }),
    addCustomers: (...ids) => {
      settings.knownCustomers ??= new Set();
      for (const id of ids) settings.knownCustomers.add(id);
    },
    addMeter: (p) =>
      v1.addMeter(
        state,
        {
          event_name: p.event_name,
          display_name: p.display_name ?? p.event_name,
          default_aggregation: { formula: p.formula ?? 'sum' },
          customer_mapping: { type: 'by_id', event_payload_key: p.customerKey ?? 'stripe_customer_id' },
          value_settings: { event_payload_key: p.valueKey ?? 'value' },
          ...(p.event_time_window ? { event_time_window: p.event_time_window } : {}),
        },
        clock.nowSeconds(),
      ),
    acceptedEvents: (f) => acceptedEvents(state, f),
    totals: () => totals(state),
    totalFor: (customer, eventName) => acceptedEvents(state, { customer, eventName }).reduce((sum, e) => sum + e.value, 0n),
    identifierLog: () => [...state.attempts],
    identifierConflicts: () => identifierConflicts(state),
    asyncErrors: () => [...state.asyncErrors],
    calls: () => [...state.calls],
    callsByEndpoint: () => countCalls(state.calls, (c) => c.endpoint),
    callsByStatus: () => countCalls(state.calls, (c) => (c.status === null ? 'none' : String(c.status))),
    inject: (spec) => faults.add(spec),
    clearFaults: () => faults.clear(),
    resetRateWindow: () => {
      recentCalls.length = 0;
    },
    webhooks: {
      errorReportTriggered: (input) => deliveryOf('v1.billing.meter.error_report_triggered', input),
      noMeterFound: (input) => deliveryOf('v1.billing.meter.no_meter_found', input),
      fromAsyncErrors: (o = {}) => reportsFromAsyncErrors(state.asyncErrors.filter((e) => e.at >= (o.since ?? -Infinity)), o).map((r) => deliveryOf(r.type, r.input)),
      sign: (payload, o = {}) => signPayload(payload, o.secret ?? settings.webhookSecret, o.timestamp ?? clock.nowSeconds()),
      async deliver(url, d) {
        const r = await fetch(url, { method: 'POST', headers: d.headers, body: d.payload });
        return { status: r.status, body: await r.text() };
      },
    },
    async close() {
      closed = true;
      for (const s of sleeps) {
        clearTimeout(s.timer);
        s.resolve();
      }
      sleeps.clear();
      for (const r of hung) r.destroy();
      hung.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return fake;
}
