/**
 * The HTTP gateway under hostile clients, in process: real API keys in ClickHouse, a recording
 * publisher instead of Kafka. Every hostile request gets a clean 4xx (checked against the
 * OpenAPI document like every other answer) and the gateway keeps serving good requests.
 */
import net from 'node:net';
import { createApiKeyStore, type ApiKeyStore } from '../../src/adapters/clickhouse/api-key-store';
import type { UsageQuery } from '../../src/adapters/clickhouse/usage-query';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { generateApiKey } from '../../src/gateway/api-key';
import { openApiDocument } from '../../src/gateway/from-config';
import { startKeyCache, type KeyCache } from '../../src/gateway/key-cache';
import { createKeyRateLimiter } from '../../src/gateway/rate-limit';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { silentLogger } from '../../src/runtime/logger';
import { createGatewayMetrics } from '../../src/runtime/metrics';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { api, assertMatchesOpenApi } from '../helpers/openapi';
import { waitFor } from '../helpers/wait';

const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour' }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;
const MAX_BODY = 64 * 1024;
const NOW = Date.now();

/** Sends raw bytes (optionally in timed pieces) and collects the answer until the server closes. */
function rawExchange(port: number, pieces: (string | Buffer)[], opts: { gapMs?: number; path: string; method: string }): Promise<{ status: number; contentType: string | null; body: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let stopped = false;
    socket.on('data', (d) => (received += d.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server may close while we still write (that is the point): the answer already came.
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    socket.on('close', () => {
      stopped = true;
      const [head = '', body = ''] = received.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      const contentType = /\r\ncontent-type: ([^\r]+)/i.exec(head)?.[1] ?? null;
      resolve({ status, contentType, body, elapsedMs: Date.now() - started });
    });
    void (async () => {
      for (const p of pieces) {
        if (stopped || socket.destroyed) return;
        socket.write(p);
        if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
    })();
  });
}

describe('the HTTP gateway under hostile clients', () => {
  let ch: TestClickHouse;
  let store: ApiKeyStore;
  let keys: KeyCache;
  let gateway: Gateway;
  let port: number;
  const published: UsageEvent[] = [];
  const usageQueries: UsageQuery[] = [];
  let kafkaDown = false;
  const key = { acme: '', globex: '' };
  let acmeId = '';

  const mint = async (tenant: string) => {
    const k = generateApiKey();
    await store.create({ id: k.id, tenant, name: 'test', keySha256: k.hash, createdAt: Date.now() });
    return k;
  };
  const event = (over: Record<string, unknown> = {}) => ({ id: `e${Math.random()}`, customer: 'c1', meter: 'tokens', value: '1', timestamp: NOW, ...over });
  const postEvents = (body: string, headers: Record<string, string> = {}) =>
    api(gateway.url, '/v1/events', { method: 'POST', headers: { authorization: `Bearer ${key.acme}`, 'content-type': 'application/json', ...headers }, body });
  const stillServing = async () => {
    const before = published.length;
    const r = await postEvents(JSON.stringify(event()));
    expect(r.status).toBe(202);
    expect(published.length).toBe(before + 1);
  };
  const checked = async (path: string, method: string, exchange: Promise<{ status: number; contentType: string | null; body: string; elapsedMs: number }>) => {
    const r = await exchange;
    assertMatchesOpenApi({ method, path, status: r.status, contentType: r.contentType, text: r.body });
    return r;
  };

  beforeAll(async () => {
    ch = await testClickHouse('gateway_hostile');
    store = createApiKeyStore(ch.client, ch.database);
    const a = await mint('acme');
    acmeId = a.id;
    key.acme = a.key;
    key.globex = (await mint('globex')).key;
    keys = await startKeyCache({ load: () => store.all(), refreshMs: 200, maxStaleMs: 30_000, clock: Date.now, logger: silentLogger() });
    gateway = await startGateway({
      host: '127.0.0.1',
      port: 0,
      keys,
      rateLimiter: createKeyRateLimiter({ perSecond: 1000, burst: 1000 }),
      timeouts: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 },
      openapi: openApiDocument(),
      publish: async (events) => {
        if (kafkaDown) throw new Error('KafkaJSNumberOfRetriesExceeded: broker 127.0.0.1:9092 unreachable');
        published.push(...events);
      },
      clock: Date.now,
      maxFutureSkewMs: 300_000,
      maxBodyBytes: MAX_BODY,
      maxEvents: 5,
      queryUsage: async (q) => {
        usageQueries.push(q);
        return [];
      },
      meters: () => meters,
      billingAnchorDay: 1,
      metrics: createGatewayMetrics({ defaultMetrics: false }),
      logger: silentLogger(),
    });
    port = Number(new URL(gateway.url).port);
  });

  afterAll(async () => {
    await gateway?.close();
    keys?.stop();
    await ch?.close();
  });

  it('refuses bodies over the limit, declared or streamed, with 413 and keeps serving', async () => {
    const declared = await checked('/v1/events', 'POST', rawExchange(port, [`POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.acme}\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n`], { path: '/v1/events', method: 'POST' }));
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).error).toMatch(/larger than 65536 bytes/);
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const chunks = Array.from({ length: 64 }, () => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    const streamed = await checked('/v1/events', 'POST', rawExchange(port, [`POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.acme}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, ...chunks], { gapMs: 5, path: '/v1/events', method: 'POST' }));
    expect(streamed.status).toBe(413);
    await stillServing();
  });

  it('refuses more events per request than allowed with 413, whatever the format', async () => {
    const six = Array.from({ length: 6 }, () => event());
    const array = await postEvents(JSON.stringify(six));
    expect(array.status).toBe(413);
    expect(array.body.error).toMatch(/6 events; at most 5/);
    const ndjson = await postEvents(six.map((e) => JSON.stringify(e)).join('\n'), { 'content-type': 'application/x-ndjson' });
    expect(ndjson.status).toBe(413);
    await stillServing();
  });

  it('answers bad JSON and bodies that are not UTF-8 with 400, and publishes nothing of them', async () => {
    const before = published.length;
    for (const body of ['{"id": "a", ', '[1, 2', 'null', '{"id":"x"}{"id":"y"}', '\u0000\u0001']) {
      const r = await postEvents(body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
    }
    const notUtf8 = await api(gateway.url, '/v1/events', { method: 'POST', headers: { authorization: `Bearer ${key.acme}`, 'content-type': 'application/json' }, body: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]) });
    expect(notUtf8.status).toBe(400);
    expect(notUtf8.body.error).toMatch(/not valid UTF-8/);
    expect(published.length).toBe(before);
    await stillServing();
  });

  it('answers wrong content types with 415', async () => {
    for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '']) {
      const r = await postEvents(JSON.stringify(event()), { 'content-type': type });
      expect({ type, status: r.status }).toEqual({ type, status: 415 });
      expect(r.body.error).toMatch(/Content-Type must be one of application\/json, application\/x-ndjson/);
    }
    await stillServing();
  });

  it('drops slow clients (headers sent byte by byte, or a body that never ends) with 408 while serving others', async () => {
    const head = `POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.acme}\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n`;
    const slowHead = checked('/v1/events', 'POST', rawExchange(port, head.split(''), { gapMs: 150, path: '/v1/events', method: 'POST' }));
    const slowBody = checked('/v1/events', 'POST', rawExchange(port, [head, '{', '"', 'i', 'd'], { gapMs: 1000, path: '/v1/events', method: 'POST' }));
    // Served meanwhile: a slow client holds only its own connection.
    await stillServing();
    const [h, b] = await Promise.all([slowHead, slowBody]);
    expect(h.status).toBe(408);
    expect(b.status).toBe(408);
    // Timeouts are checked every second: headers within ~1 s + 1 s, the request within ~2 s + 1 s.
    expect(h.elapsedMs).toBeLessThan(4_000);
    expect(b.elapsedMs).toBeLessThan(5_000);
    await stillServing();
  });

  it('publishes nothing of a request whose client hangs up mid-body, and keeps serving', async () => {
    const before = published.length;
    const body = JSON.stringify(event());
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(`POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key.acme}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`);
        setTimeout(() => socket.destroy(), 100);
      });
      socket.on('close', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(published.length).toBe(before);
    await stillServing();
  });

  it('answers malformed HTTP and oversized headers with a clean 4xx', async () => {
    const garbage = await checked('/', 'GET', rawExchange(port, ['GARBAGE \u0001\r\n\r\n'], { path: '/', method: 'GET' }));
    expect(garbage.status).toBe(400);
    const huge = await checked('/', 'GET', rawExchange(port, [`GET /v1/usage HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`], { path: '/', method: 'GET' }));
    expect(huge.status).toBe(431);
    const unknown = await api(gateway.url, '/v2/whatever');
    expect(unknown.status).toBe(404);
    const wrongMethod = await api(gateway.url, '/v1/events', { headers: { authorization: `Bearer ${key.acme}` } });
    expect(wrongMethod.status).toBe(405);
    await stillServing();
  });

  it('refuses missing, malformed, unknown and revoked keys with 401', async () => {
    const body = JSON.stringify(event());
    const unknownKey = generateApiKey().key;
    // The real key with its last character changed (to 'A' — or to 'B' when it already ends in
    // 'A': a 32-byte secret's last base64url character is one of 16, 'A' among them).
    const altered = `${key.acme.slice(0, -1)}${key.acme.endsWith('A') ? 'B' : 'A'}`;
    for (const authorization of [undefined, '', 'Basic YWNtZTpwdw==', 'Bearer', 'Bearer not-a-key', `Bearer ${key.acme}x`, `Bearer ${unknownKey}`, `Bearer ${altered}`]) {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (authorization !== undefined) headers.authorization = authorization;
      const w = await api(gateway.url, '/v1/events', { method: 'POST', headers, body });
      const r = await api(gateway.url, '/v1/usage?from=2026-11-01&to=2026-12-01', { headers });
      expect({ authorization, write: w.status, read: r.status }).toEqual({ authorization, write: 401, read: 401 });
      expect(w.headers.get('www-authenticate')).toBe('Bearer');
    }
    const doomed = await mint('acme');
    const send = () => api(gateway.url, '/v1/events', { method: 'POST', headers: { authorization: `Bearer ${doomed.key}`, 'content-type': 'application/json' }, body: JSON.stringify(event()) });
    await waitFor('the new key to be loaded', async () => (await send()).status === 202, 5_000, 50);
    await store.revoke(doomed.id, Date.now());
    const revokedAt = Date.now();
    await waitFor('the revoked key to be refused', async () => (await send()).status === 401, 5_000, 50);
    expect(Date.now() - revokedAt).toBeLessThan(3_000);
    expect(acmeId).not.toBe(doomed.id);
    await stillServing();
  });

  it("keeps tenants apart: a key writes and reads only its own tenant's events", async () => {
    const before = published.length;
    const r = await postEvents(JSON.stringify([event({ id: 'mine' }), event({ id: 'theirs', tenant: 'globex' }), event({ id: 'explicit', tenant: 'acme' })]));
    expect(r.status).toBe(207);
    expect(r.body.results[1]).toEqual({ index: 1, status: 'rejected', reason: expect.stringMatching(/tenant "globex" does not match/) });
    expect(published.slice(before).map((e) => [e.id, e.tenant])).toEqual([
      ['mine', 'acme'],
      ['explicit', 'acme'],
    ]);
    const allForeign = await postEvents(JSON.stringify([event({ tenant: 'globex' })]));
    expect(allForeign.status).toBe(400);
    expect(allForeign.body).toMatchObject({ accepted: 0, rejected: 1 });

    usageQueries.length = 0;
    for (const q of ['tenant=globex', 'customer=c1&tenant=globex', "customer=c1' OR '1'='1"]) {
      await api(gateway.url, `/v1/usage?from=2026-11-01&to=2026-12-01&${q}`, { headers: { authorization: `Bearer ${key.acme}` } });
    }
    await api(gateway.url, '/v1/usage/period?customer=c1', { headers: { authorization: `Bearer ${key.globex}` } });
    expect(usageQueries.map((q) => q.tenant)).toEqual(['acme', 'globex']);
    await stillServing();
  });

  it('answers 503 when Kafka does not acknowledge, reports nothing accepted, and serves again once it does', async () => {
    kafkaDown = true;
    try {
      const r = await postEvents(JSON.stringify([event(), event()]));
      expect(r.status).toBe(503);
      expect(r.body.error).toMatch(/none is confirmed accepted; send the request again/);
      expect(r.body.error).not.toMatch(/127\.0\.0\.1|KafkaJS/);
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      kafkaDown = false;
    }
    await stillServing();
  });

  it('answers a key over its rate limit with 429 and Retry-After, other keys unaffected', async () => {
    const limited = await startGateway({
      host: '127.0.0.1',
      port: 0,
      keys,
      rateLimiter: createKeyRateLimiter({ perSecond: 1, burst: 3 }),
      timeouts: { headersTimeoutMs: 1000, requestTimeoutMs: 2000 },
      openapi: openApiDocument(),
      publish: async () => undefined,
      clock: Date.now,
      maxFutureSkewMs: 300_000,
      maxBodyBytes: MAX_BODY,
      maxEvents: 5,
      queryUsage: async () => [],
      meters: () => meters,
      billingAnchorDay: 1,
      metrics: createGatewayMetrics({ defaultMetrics: false }),
      logger: silentLogger(),
    });
    try {
      const send = (k: string) => api(limited.url, '/v1/events', { method: 'POST', headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' }, body: JSON.stringify(event()) });
      const statuses = [];
      for (let i = 0; i < 4; i += 1) statuses.push((await send(key.acme)).status);
      expect(statuses).toEqual([202, 202, 202, 429]);
      const refused = await send(key.acme);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await send(key.globex)).status).toBe(202);
    } finally {
      await limited.close();
    }
  });
});
