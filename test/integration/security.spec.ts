/**
 * Security, in process: tenant isolation through ingest → counters → pushes (fake Stripe), the
 * worker's HTTP surface under hostile requests, where it binds, and webhook signatures.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createDecoder } from '../../src/adapters/avro/codec';
import { importCustomers } from '../../src/adapters/clickhouse/customer-store';
import { createLedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import { createPushStore, type PushStore } from '../../src/adapters/clickhouse/push-store';
import { createStreamStore } from '../../src/adapters/clickhouse/stream-store';
import { listRejected } from '../../src/adapters/clickhouse/rejected-store';
import { queryUsage } from '../../src/adapters/clickhouse/usage-query';
import { createMeterEventsSink } from '../../src/adapters/stripe/meter-events-sink';
import { loadConfig } from '../../src/config/config';
import { parseMeterCatalog } from '../../src/domain/meters';
import { errorReportRoute } from '../../src/pipeline/error-reports';
import { ingestBatch, type RawMessage } from '../../src/pipeline/ingest-batch';
import { createPusher } from '../../src/pipeline/pusher';
import { metricsRoute, startHttpServer, type Route } from '../../src/runtime/http-server';
import { createLogger, silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { createRateLimiter } from '../../src/runtime/rate-limiter';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { listeningAddresses } from '../helpers/listening';
import { decimalBytes, encodeBodyV2, singleObject, type RawEvent } from '../helpers/hostile-input';

const HOUR = 3_600_000;
const NOW = Date.now();
const THIS_HOUR = Math.floor(NOW / HOUR) * HOUR;
const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;

interface Reply {
  status: number | null;
  body: string;
  headers: http.IncomingHttpHeaders;
  error?: string;
}

/** A raw HTTP request: the path is sent exactly as given (no normalisation), any method, any body. */
function request(base: string, opts: { method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean }): Promise<Reply> {
  const u = new URL(base);
  return new Promise((resolve) => {
    const req = http.request({ host: u.hostname, port: u.port, method: opts.method ?? 'GET', path: opts.path, headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? null, body, headers: res.headers }));
      res.on('error', (err) => resolve({ status: res.statusCode ?? null, body, headers: res.headers, error: err.message }));
    });
    req.on('error', (err) => resolve({ status: null, body: '', headers: {}, error: err.message }));
    if (opts.body !== undefined && opts.chunked) {
      // No content-length: the body streams in 64 KiB chunks.
      const buf = Buffer.from(opts.body);
      let at = 0;
      const pump = () => {
        while (at < buf.length) {
          const ok = req.write(buf.subarray(at, at + 65_536));
          at += 65_536;
          if (!ok) return void req.once('drain', pump);
        }
        req.end();
      };
      req.on('error', () => undefined);
      pump();
    } else req.end(opts.body);
  });
}

const HOSTILE_VALUES = [
  "' OR 1=1 --",
  "a' OR tenant = 'b",
  "a') OR ('1'='1",
  'a\\',
  "\\' OR 1=1 --",
  '{tenant:String}',
  '{x:String}',
  "a'; DROP TABLE usage_events; --",
  'a\u0000',
  '\u0000',
  'a\u001fb',
  '%',
  '*',
  'A',
  ' a',
  'a'.repeat(1_000_000),
];

/** Text that would betray internals if a reply echoed it. */
const INTERNALS = [/\bat \S+ \(/, /node_modules/, /\/src\//, /Error:/, /whsec_/, /sk_test_/, /ClickHouse/i, /stack/i];

describe('security (in process)', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  let pushes: PushStore;

  beforeAll(async () => {
    ch = await testClickHouse('security');
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    pushes = createPushStore(ch.client, ch.database);
  });
  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  const pushAll = async () => {
    const limiter = createRateLimiter(1000);
    const pusher = createPusher({
      streams: createStreamStore(ch.client, ch.database),
      pushes,
      sink: createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })),
      meters: () => meters,
      clock: Date.now,
      logger: silentLogger(),
      rateLimit: () => limiter.take(),
      sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
    });
    await pusher.cycle();
    await pusher.drain();
  };

  describe('tenant isolation: the same customer and event id under two tenants never mix', () => {
    // Printable look-alikes: (tenant "a:b", customer "c") and (tenant "a", customer "b:c").
    const events: [RawEvent, string][] = [
      [{ id: 'e-1', tenant: 'a', customer: 'cust-1', meter: 'tokens', value: decimalBytes('10.5'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'ok'],
      [{ id: 'e-1', tenant: 'b', customer: 'cust-1', meter: 'tokens', value: decimalBytes('7.25'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'ok'],
      [{ id: 'e-2', tenant: 'b', customer: 'cust-1', meter: 'tokens', value: decimalBytes('100'), timestamp: THIS_HOUR + 2000, properties: [], source: null }, 'ok'],
      [{ id: 'x', tenant: 'a:b', customer: 'c', meter: 'tokens', value: decimalBytes('3'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'ok'],
      [{ id: 'x', tenant: 'a', customer: 'b:c', meter: 'tokens', value: decimalBytes('5'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'ok'],
      // The partition key's separator inside a tenant or id: rejected, so (a␟b, c) and (a, b␟c) cannot share a key.
      [{ id: 'c', tenant: 'a\u001fb', customer: 'cust-1', meter: 'tokens', value: decimalBytes('1000'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'invalid_event'],
      [{ id: 'b\u001fc', tenant: 'a', customer: 'cust-1', meter: 'tokens', value: decimalBytes('1000'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'invalid_event'],
      [{ id: 'e-1', tenant: 'a\u0000', customer: 'cust-1', meter: 'tokens', value: decimalBytes('1000'), timestamp: THIS_HOUR + 1000, properties: [], source: null }, 'invalid_event'],
    ];

    beforeAll(async () => {
      const messages: RawMessage[] = events.map(([e], i) => ({ ref: { topic: 'usage.events', partition: 0, offset: String(i) }, key: null, value: singleObject(encodeBodyV2(e)) }));
      const outcome = await ingestBatch(messages, {
        decoder: createDecoder(),
        meters: () => meters,
        ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }),
        clock: Date.now,
        maxFutureSkewMs: 300_000,
      });
      expect({ accepted: outcome.accepted, duplicates: outcome.duplicates, conflicts: outcome.conflicts }).toEqual({ accepted: 5, duplicates: 0, conflicts: 0 });
      expect(outcome.rejections.map((r) => [r.ref.offset, r.code])).toEqual(events.flatMap(([, code], i) => (code === 'ok' ? [] : [[String(i), code]])));
      await importCustomers(
        ch.client,
        ch.database,
        [
          { tenant: 'a', customer: 'cust-1', stripeCustomerId: 'cus_A' },
          { tenant: 'b', customer: 'cust-1', stripeCustomerId: 'cus_B' },
          { tenant: 'a:b', customer: 'c', stripeCustomerId: 'cus_AB' },
          { tenant: 'a', customer: 'b:c', stripeCustomerId: 'cus_ABC' },
        ],
        Date.now(),
      );
      await pushAll();
    });

    it('stores separate ledger rows and separate counters per tenant', async () => {
      const ledger = await rows(ch.client, `SELECT tenant, customer, id, toString(value) AS value FROM ${ch.database}.usage_events ORDER BY tenant, customer, id`);
      expect(ledger).toEqual([
        { tenant: 'a', customer: 'b:c', id: 'x', value: '5' },
        { tenant: 'a', customer: 'cust-1', id: 'e-1', value: '10.5' },
        { tenant: 'a:b', customer: 'c', id: 'x', value: '3' },
        { tenant: 'b', customer: 'cust-1', id: 'e-1', value: '7.25' },
        { tenant: 'b', customer: 'cust-1', id: 'e-2', value: '100' },
      ]);
      const counters = await rows(ch.client, `SELECT tenant, customer, toString(value) AS value, events FROM ${ch.database}.usage_counters FINAL ORDER BY tenant, customer`);
      expect(counters).toEqual([
        { tenant: 'a', customer: 'b:c', value: '5', events: 1 },
        { tenant: 'a', customer: 'cust-1', value: '10.5', events: 1 },
        { tenant: 'a:b', customer: 'c', value: '3', events: 1 },
        { tenant: 'b', customer: 'cust-1', value: '107.25', events: 2 },
      ]);
    });

    it("pushes each tenant's usage to its own Stripe customer, under distinct identifiers", async () => {
      expect(fake.totalFor('cus_A', 'tokens')).toBe(10n);
      expect(fake.totalFor('cus_B', 'tokens')).toBe(107n);
      expect(fake.totalFor('cus_AB', 'tokens')).toBe(3n);
      expect(fake.totalFor('cus_ABC', 'tokens')).toBe(5n);
      expect(fake.acceptedEvents().length).toBe(4);
      expect(fake.identifierConflicts()).toEqual([]);
      const ledger = await rows<{ tenant: string; customer: string; value: string; identifier: string }>(
        ch.client,
        `SELECT tenant, customer, toString(value) AS value, identifier FROM ${ch.database}.stripe_pushes FINAL WHERE status = 'reported' ORDER BY tenant, customer`,
      );
      expect(ledger.map(({ tenant, customer, value }) => ({ tenant, customer, value }))).toEqual([
        { tenant: 'a', customer: 'b:c', value: '5' },
        { tenant: 'a', customer: 'cust-1', value: '10' },
        { tenant: 'a:b', customer: 'c', value: '3' },
        { tenant: 'b', customer: 'cust-1', value: '107' },
      ]);
      expect(new Set(ledger.map((p) => p.identifier)).size).toBe(4);
    });

    it("a tenant's query never shows another tenant's usage", async () => {
      const q = (tenant: string) => queryUsage(ch.client, ch.database, { tenant, from: THIS_HOUR - HOUR, to: THIS_HOUR + HOUR });
      expect((await q('a')).map((r) => [r.tenant, r.customer, r.value])).toEqual([
        ['a', 'b:c', '5'],
        ['a', 'cust-1', '10.5'],
      ]);
      expect((await q('b')).map((r) => [r.tenant, r.customer, r.value])).toEqual([['b', 'cust-1', '107.25']]);
      for (const t of ['a:b', 'a\u001fb', "a' OR '1'='1", 'A', 'a ', '%', '*']) {
        expect((await q(t)).every((r) => r.tenant === t)).toBe(true);
      }
    });

    it('hostile values in every query filter and the dead-letter filter are plain values: no rows, no SQL', async () => {
      const bad: unknown[] = [];
      for (const h of HOSTILE_VALUES) {
        for (const q of [{ tenant: h }, { tenant: 'a', customer: h }, { tenant: 'a', meter: h }, { tenant: h, customer: h, meter: h }]) {
          const r = await queryUsage(ch.client, ch.database, { ...q, from: THIS_HOUR - HOUR, to: THIS_HOUR + HOUR }).catch((err: Error) => err);
          if (!Array.isArray(r) || r.length !== 0) bad.push({ q: JSON.stringify(q).slice(0, 80), r: String(r).slice(0, 200) });
        }
        const dl = await listRejected(ch.client, ch.database, { reason: h });
        if (dl.length !== 0) bad.push({ dlq: h.slice(0, 40), n: dl.length });
      }
      expect(bad).toEqual([]);
      expect(await queryUsage(ch.client, ch.database, { tenant: 'b', from: THIS_HOUR - HOUR, to: THIS_HOUR + HOUR })).toHaveLength(1);
    });

    it('every value reaches SQL as a query parameter: no user input is interpolated into query text', () => {
      // Interpolations allowed inside SQL text: checked identifiers and whitelisted SQL fragments
      // (constant SQL whose values are {parameters}: a stream scope, a settle bound, a WHERE of those;
      // the constant aggregate lists and window-state expression of window-aggregates.ts, the
      // ledger's constant merge setting).
      const allowed = /^\$\{(database|db|table|projection|t\('[a-z_]+'\)|bucket|period|filter|recent|where|streams\.sql|PROJECTION_AGGREGATES|SELECT_WINDOW_AGGREGATES|LATEST_WINDOW|SELECT_LATEST_WINDOW|VIEW_WINDOW_AGGREGATES|windowState|forceProjection|MERGE_SETTING)\}$/;
      const dir = path.join(__dirname, '..', '..', 'src', 'adapters', 'clickhouse');
      const found: string[] = [];
      // Every file below it, the table definitions in schema/ included.
      const files = (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
      expect(files).toEqual(expect.arrayContaining(['ledger-store.ts', path.join('schema', 'ledger-tables.ts')]));
      for (const file of files) {
        const text = fs.readFileSync(path.join(dir, file), 'utf8');
        for (const m of text.matchAll(/`[^`]*\b(SELECT|INSERT|ALTER|CREATE|WHERE|FROM)\b[^`]*`/g)) {
          for (const i of m[0].matchAll(/\$\{[^}]*\}/g)) if (!allowed.test(i[0])) found.push(`${file}: ${i[0]}`);
        }
      }
      expect(found).toEqual([]);
    });
  });

  it("keeps Stripe's key out of the push ledger and the logs when Stripe refuses it (401)", async () => {
    const wrongKey = 'sk_test_S3CRETx9wrongkey';
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } });
    await ingestBatch([{ ref: { topic: 'usage.events', partition: 1, offset: '0' }, key: null, value: singleObject(encodeBodyV2({ id: 'k-1', tenant: 'keyless', customer: 'c', meter: 'tokens', value: decimalBytes('4'), timestamp: THIS_HOUR + 1000, properties: [], source: null })) }], {
      decoder: createDecoder(),
      meters: () => meters,
      ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }),
      clock: Date.now,
      maxFutureSkewMs: 300_000,
    });
    await importCustomers(ch.client, ch.database, [{ tenant: 'keyless', customer: 'c', stripeCustomerId: 'cus_K' }], Date.now());
    const limiter = createRateLimiter(1000);
    const pusher = createPusher({
      streams: createStreamStore(ch.client, ch.database),
      pushes,
      sink: createMeterEventsSink(fake.client({ apiKey: wrongKey, maxNetworkRetries: 0 })),
      meters: () => meters,
      clock: Date.now,
      logger,
      rateLimit: () => limiter.take(),
      sleep: async () => undefined,
    });
    await pusher.cycle();
    await pusher.drain().catch(() => undefined);
    const [push] = await pushes.list({ tenant: 'keyless' });
    expect(push!.lastError).toMatch(/401.*Invalid API Key provided: \[redacted\]/);
    const everything = JSON.stringify(push, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)) + lines.join('');
    expect(everything).not.toContain('S3CRETx9');
    expect(everything).not.toMatch(/sk_test_[A-Za-z0-9*]{4,}/);
    expect(fake.totalFor('cus_K', 'tokens')).toBe(0n);
  });

  describe('the HTTP surface', () => {
    let server: { url: string; close(): Promise<void> };
    let reported: { identifier: string };

    beforeAll(async () => {
      // The worker's routes, composed as `meterline run` does, on the configured (default) host.
      const config = loadConfig({ STRIPE_WEBHOOK_SECRET: fake.webhookSecret, METRICS_PORT: '0' });
      const routes: Record<string, Route> = {
        '/metrics': metricsRoute(createMetrics().registry),
        '/webhooks/stripe': errorReportRoute({ stripe: fake.client(), webhookSecret: config.stripe.webhookSecret!, pushes, clock: Date.now, logger: silentLogger() }),
      };
      server = await startHttpServer({ host: config.http.host, port: config.http.metricsPort, routes, logger: silentLogger() });
      const [push] = (await pushes.list({ tenant: 'b' })).filter((p) => p.status === 'reported');
      reported = push!;
    });
    afterAll(async () => {
      await server?.close();
    });

    it('binds to 127.0.0.1 by default: the only socket listening on its port is on the loopback address', () => {
      expect(loadConfig({}).http.host).toBe('127.0.0.1');
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      // The kernel's socket table, not a connection attempt: no traffic leaves 127.0.0.0/8.
      expect(listeningAddresses(Number(new URL(server.url).port))).toEqual(['127.0.0.1']);
    });

    it('honours HTTP_HOST', async () => {
      const other = await startHttpServer({ host: loadConfig({ HTTP_HOST: '0.0.0.0' }).http.host, port: 0, routes: { '/metrics': metricsRoute(createMetrics().registry) }, logger: silentLogger() });
      try {
        expect(other.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
        expect(listeningAddresses(Number(new URL(other.url).port))).toEqual(['0.0.0.0']);
        expect((await request(other.url.replace('0.0.0.0', '127.0.0.1'), { path: '/metrics' })).status).toBe(200);
      } finally {
        await other.close();
      }
    });

    it('answers hostile requests with a clean 4xx, echoes no internals, and keeps serving', async () => {
      const big = Buffer.alloc(2 * 1024 * 1024, 'a');
      const cases: { name: string; method?: string; path: string; headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean; status: number }[] = [
        { name: 'unknown path', path: '/admin', status: 404 },
        { name: 'root', path: '/', status: 404 },
        { name: 'path traversal', path: '/../../../etc/passwd', status: 404 },
        { name: 'encoded traversal', path: '/%2e%2e/%2e%2e/etc/passwd', status: 404 },
        { name: 'traversal into a route', path: '/metrics/../webhooks/stripe', status: 404 },
        { name: 'NUL in the path', path: '/metrics%00', status: 404 },
        { name: 'absolute-form URL', path: 'http://evil.example/etc/passwd', status: 404 },
        { name: 'injection in the path', path: "/metrics' OR 1=1 --".replace(/ /g, '%20'), status: 404 },
        { name: 'POST /metrics', method: 'POST', path: '/metrics', body: 'x', status: 405 },
        { name: 'DELETE /metrics', method: 'DELETE', path: '/metrics', status: 405 },
        { name: 'GET /webhooks/stripe', path: '/webhooks/stripe', status: 405 },
        { name: 'PUT /webhooks/stripe', method: 'PUT', path: '/webhooks/stripe', body: '{}', status: 405 },
        { name: 'webhook without signature', method: 'POST', path: '/webhooks/stripe', body: '{}', status: 400 },
        { name: 'webhook, not JSON', method: 'POST', path: '/webhooks/stripe', headers: { 'stripe-signature': 't=1,v1=00' }, body: '\u0000\u0001{{{', status: 400 },
        { name: 'webhook body over 1 MiB (content-length)', method: 'POST', path: '/webhooks/stripe', body: big, status: 413 },
        { name: 'webhook body over 1 MiB (chunked)', method: 'POST', path: '/webhooks/stripe', body: big, chunked: true, status: 413 },
        { name: 'oversized header', path: '/metrics', headers: { 'x-big': 'h'.repeat(40_000) }, status: 431 },
      ];
      for (const c of cases) {
        const r = await request(server.url, c);
        expect({ name: c.name, status: r.status }).toEqual({ name: c.name, status: c.status });
        for (const re of INTERNALS) expect({ name: c.name, leaked: re.test(r.body) ? r.body.slice(0, 200) : null }).toEqual({ name: c.name, leaked: null });
      }
      const still = await request(server.url, { path: '/metrics' });
      expect(still.status).toBe(200);
      expect(still.body).toMatch(/^# HELP /m);
    });

    it('refuses webhooks without a valid signature (400) and changes nothing; accepts a valid one', async () => {
      const meterId = fake.state.meters.values().next().value!.id;
      const delivery = fake.webhooks.errorReportTriggered({ meterId, errorTypes: [{ code: 'meter_event_customer_not_found', samples: [{ identifier: reported.identifier }] }] });
      const nowSec = Math.floor(Date.now() / 1000);
      const post = (headers: Record<string, string>, body = delivery.payload) => request(server.url, { method: 'POST', path: '/webhooks/stripe', headers: { 'content-type': 'application/json', ...headers }, body });
      const bad: [string, Record<string, string>, string?][] = [
        ['missing', {}],
        ['empty', { 'stripe-signature': '' }],
        ['garbage', { 'stripe-signature': 'not a signature' }],
        ['wrong secret (a replay signed for another endpoint)', { 'stripe-signature': fake.webhooks.sign(delivery.payload, { secret: 'whsec_someone_else' }) }],
        ['expired (10 minutes old, tolerance 5)', { 'stripe-signature': fake.webhooks.sign(delivery.payload, { timestamp: nowSec - 600 }) }],
        ['v0 scheme only', { 'stripe-signature': delivery.signature.replace('v1=', 'v0=') }],
        ['signature of another body', { 'stripe-signature': fake.webhooks.sign('{"id":"evt_other"}') }],
        ['tampered body', { 'stripe-signature': delivery.signature }, delivery.payload.replace('"type":', '"type" :')],
      ];
      for (const [name, headers, body] of bad) {
        const r = await post(headers, body);
        expect({ name, status: r.status, body: r.body }).toEqual({ name, status: 400, body: 'invalid signature\n' });
      }
      expect((await pushes.list({ identifiers: [reported.identifier] }))[0]).toMatchObject({ status: 'reported' });
      const failedBefore = await rows(ch.client, `SELECT count() AS c FROM ${ch.database}.stripe_pushes FINAL WHERE status = 'failed'`);
      expect(failedBefore).toEqual([{ c: 0 }]);

      const ok = await post(delivery.headers);
      expect(ok.status).toBe(200);
      expect((await pushes.list({ identifiers: [reported.identifier] }))[0]).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/meter_event_customer_not_found/) });
    });

    it('a handler failure (Stripe unreachable while fetching the event) is a bare 500, and the server keeps serving', async () => {
      const delivery = fake.webhooks.noMeterFound({ errorTypes: [{ code: 'no_meter', samples: [{ identifier: 'ml_nope' }] }] });
      // Unreachable for longer than the handler's retries of the fetch (4 calls, each with stripe-node's own).
      fake.inject({ method: 'GET', path: /^\/v2\/core\/events\//, kind: 'status', status: 500, times: 1_000 });
      try {
        const r = await request(server.url, { method: 'POST', path: '/webhooks/stripe', headers: delivery.headers, body: delivery.payload });
        expect([r.status, r.body]).toEqual([500, 'internal error\n']);
      } finally {
        fake.clearFaults();
      }
      expect((await request(server.url, { path: '/metrics' })).status).toBe(200);
    });
  });
});
