import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { billingPeriodOf } from '../../src/domain/windows';
import { runCli, spawnCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, startTestBroker, type TestBroker } from '../helpers/kafka';
import { api } from '../helpers/openapi';
import { waitFor } from '../helpers/wait';
import { exited, startWorkerProcess, workerEnv } from '../helpers/worker-process';

const TOPIC = 'usage.events';

/**
 * The HTTP API end to end, as a Go or Python service would use it: this process talks to the
 * gateway with plain HTTP (Node's fetch) only. Apache Kafka, a `meterline run` worker and a
 * `meterline gateway` run as in production; two tenants, each with its own key.
 */
describe('meterline gateway: events in and usage out over HTTP', () => {
  let broker: TestBroker;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess;
  let gateway: ChildProcess;
  let gatewayLog = '';
  let base: string;
  const keys: Record<string, { id: string; key: string }> = {};

  const createKey = async (tenant: string) => {
    const r = await runCli(['keys', 'create', '--tenant', tenant, '--name', `${tenant}-service`, '--json'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as { id: string; key: string };
  };
  const auth = (tenant: string) => ({ authorization: `Bearer ${keys[tenant]!.key}` });
  const post = (tenant: string, contentType: string, body: string) => api(base, '/v1/events', { method: 'POST', headers: { ...auth(tenant), 'content-type': contentType }, body });

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 2 },
      { name: `${TOPIC}.dlq`, partitions: 1 },
    ], { kind: 'kafka' });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-gateway-'));
    env = workerEnv(broker, 'gateway-test', dataDir);
    worker = startWorkerProcess(env);
    // Keys and the gateway reach the worker's embedded ClickHouse through its HTTP interface.
    await waitFor('the worker to share its ClickHouse', () => fs.existsSync(path.join(dataDir, 'dev-clickhouse.json')), 120_000);
    keys.acme = await createKey('acme');
    keys.globex = await createKey('globex');
    gateway = spawnCli(['gateway'], { env: { ...env, GATEWAY_PORT: '0', LOG_LEVEL: 'debug', LOG_FORMAT: 'json' } });
    gateway.stderr!.on('data', (d: Buffer) => (gatewayLog += d.toString()));
    let out = '';
    gateway.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the gateway to listen', () => /listening on (http:\/\/\S+)/.test(out), 60_000);
    base = /listening on (http:\/\/\S+)/.exec(out)![1]!;
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const child of [gateway, worker]) {
      if (child && child.exitCode === null) {
        child.kill('SIGTERM');
        await exited(child);
      }
    }
    await broker?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // Event times a few minutes ago, inside the current billing period (BILLING_PERIOD_ANCHOR_DAY=1).
  const now = Date.now();
  const at = Math.max(now - 5 * 60_000, billingPeriodOf(now, 1).start + 60_000);
  const iso = new Date(at).toISOString();
  const from = new Date(billingPeriodOf(now, 1).start).toISOString();
  const to = new Date(billingPeriodOf(now, 1).end).toISOString();
  const usage = (tenant: string, query: string) => api(base, `/v1/usage?from=${from}&to=${to}&${query}`, { headers: auth(tenant) });

  it('publishes JSON, arrays, NDJSON and CloudEvents, and reads exact totals back per tenant', async () => {
    const one = await post('acme', 'application/json', JSON.stringify({ id: 'a1', customer: 'c1', meter: 'tokens', value: '0.000000001', timestamp: at }));
    expect(one.status).toBe(202);
    expect(one.body).toEqual({ accepted: 1, rejected: 0, results: [{ index: 0, status: 'accepted', id: 'a1' }] });

    const batch = await post('acme', 'application/json', JSON.stringify([
      { id: 'a2', customer: 'c1', meter: 'tokens', value: 1.5, timestamp: iso },
      { id: 'a3', customer: 'c1', meter: 'tokens', value: '2.25', timestamp: at },
    ]));
    expect(batch.status).toBe(202);

    const ndjson = await post('acme', 'application/x-ndjson', [
      JSON.stringify({ id: 'a4', customer: 'c2', meter: 'api_calls', value: 1, timestamp: at }),
      JSON.stringify({ id: 'a5', customer: 'c2', meter: 'api_calls', value: 1, timestamp: at }),
      '{"id":"a6","customer":"c1","meter":"tokens","value":0.1,"timestamp":' + at + '}',
    ].join('\n') + '\n');
    expect(ndjson.status).toBe(202);
    expect(ndjson.body.accepted).toBe(3);

    const cloudEvent = await post('acme', 'application/cloudevents+json', JSON.stringify({ specversion: '1.0', id: 'a7', source: 'billing-svc', type: 'tokens', subject: 'c1', time: iso, data: { value: '0.2' } }));
    expect(cloudEvent.status).toBe(202);
    const ceBatch = await post('acme', 'application/cloudevents-batch+json', JSON.stringify([{ specversion: '1.0', id: 'a8', source: 'billing-svc', type: 'tokens', subject: 'c2', time: iso, data: { value: 3, properties: { model: 'm1' } } }]));
    expect(ceBatch.status).toBe(202);

    // Tenant acme cannot write as globex: that event alone is rejected, with the reason.
    const cross = await post('acme', 'application/json', JSON.stringify([
      { id: 'x1', tenant: 'globex', customer: 'c1', meter: 'tokens', value: '500', timestamp: at },
      { id: 'a9', customer: 'c1', meter: 'tokens', value: '0.7', timestamp: at },
    ]));
    expect(cross.status).toBe(207);
    expect(cross.body.results).toEqual([
      { index: 0, status: 'rejected', reason: expect.stringMatching(/tenant "globex" does not match the API key's tenant "acme"/) },
      { index: 1, status: 'accepted', id: 'a9' },
    ]);
    const g = await post('globex', 'application/json', JSON.stringify([{ id: 'a1', customer: 'c1', meter: 'tokens', value: '1000.123456789', timestamp: at }]));
    expect(g.status).toBe(202);
    // A copy sent again (a client retrying) is counted once.
    expect((await post('acme', 'application/json', JSON.stringify({ id: 'a1', customer: 'c1', meter: 'tokens', value: '0.000000001', timestamp: at }))).status).toBe(202);

    // 0.000000001 + 1.5 + 2.25 + 0.1 + 0.2 + 0.7: exact, never a float sum.
    const acmeTotals = () => usage('acme', 'group_by=customer');
    await waitFor('acme usage to be counted', async () => {
      const r = await acmeTotals();
      return r.body.data.some((d: { customer: string; meter: string; value: string }) => d.customer === 'c1' && d.meter === 'tokens' && d.value === '4.750000001');
    }, 60_000, 250);
    await waitFor('acme c2 usage to be counted', async () => (await acmeTotals()).body.data.length === 3, 30_000, 250);
    const totals = (await acmeTotals()).body;
    expect(totals).toMatchObject({ tenant: 'acme', group_by: 'customer' });
    expect(totals.data.map((d: Record<string, unknown>) => ({ customer: d.customer, meter: d.meter, value: d.value, events: d.events })).sort((a: { customer: string; meter: string }, b: { customer: string; meter: string }) => `${a.customer}${a.meter}`.localeCompare(`${b.customer}${b.meter}`))).toEqual([
      { customer: 'c1', meter: 'tokens', value: '4.750000001', events: 6 },
      { customer: 'c2', meter: 'api_calls', value: '2', events: 2 },
      { customer: 'c2', meter: 'tokens', value: '3', events: 1 },
    ]);

    // Per window: exact decimal strings and each window's state.
    const windows = (await usage('acme', 'customer=c1&meter=tokens')).body.data as { value: string; state: string; window_start: string }[];
    expect(windows.length).toBeGreaterThanOrEqual(1);
    for (const w of windows) expect(['open', 'closed', 'final']).toContain(w.state);
    const perMeter = (await usage('acme', 'group_by=meter')).body.data as { meter: string; value: string }[];
    expect(perMeter.find((m) => m.meter === 'tokens')!.value).toBe('7.750000001');

    // Tenants apart: globex sees only its own usage, acme never sees globex's.
    await waitFor('globex usage to be counted', async () => (await usage('globex', 'group_by=customer')).body.data.length === 1, 60_000, 250);
    expect((await usage('globex', 'group_by=customer')).body.data).toEqual([{ customer: 'c1', meter: 'tokens', value: '1000.123456789', events: 1, state: expect.any(String), windows: expect.any(Number) }]);
    const acmeValues = ((await usage('acme', '')).body.data as { value: string }[]).map((d) => d.value);
    expect(acmeValues.length).toBeGreaterThan(0);
    expect(acmeValues).not.toContain('1000.123456789');
    // No parameter reads another tenant's usage.
    const other = await usage('acme', 'tenant=globex');
    expect(other.status).toBe(400);
    expect(other.body.error).toMatch(/unknown parameter "tenant"/);

    // The billing period's totals of one customer, per meter.
    const period = await api(base, '/v1/usage/period?customer=c1', { headers: auth('acme') });
    expect(period.status).toBe(200);
    expect(period.body).toMatchObject({ tenant: 'acme', customer: 'c1', period: { start: from, end: to } });
    expect(period.body.meters).toEqual([{ meter: 'tokens', aggregation: 'sum', value: '4.750000001', events: 6, state: expect.any(String), windows: expect.any(Number) }]);
  }, 180_000);

  it('serves its OpenAPI document and per-outcome metrics without tenant labels', async () => {
    const doc = await api(base, '/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    const metrics = await api(base, '/metrics');
    expect(metrics.body).toMatch(/meterline_gateway_events_total\{outcome="accepted"\} [1-9]/);
    expect(metrics.body).toMatch(/meterline_gateway_events_total\{outcome="rejected"\} [1-9]/);
    expect(metrics.body).toMatch(/meterline_gateway_requests_total\{route="\/v1\/events",status="207"\} [1-9]/);
    expect(metrics.body).not.toMatch(/acme|globex/);
  });

  it('stops honouring a revoked key within seconds', async () => {
    const key = await createKey('initech');
    const headers = { authorization: `Bearer ${key.key}`, 'content-type': 'application/json' };
    const send = () => api(base, '/v1/events', { method: 'POST', headers, body: JSON.stringify({ id: `r${Date.now()}`, customer: 'c1', meter: 'tokens', value: '1', timestamp: at }) });
    await waitFor('the new key to be known to the gateway', async () => (await send()).status === 202, 10_000, 100);
    const revoked = await runCli(['keys', 'revoke', key.id], { env });
    expect(revoked.code).toBe(0);
    const revokedAt = Date.now();
    await waitFor('the revoked key to be refused', async () => (await send()).status === 401, 10_000, 100);
    // GATEWAY_KEY_REFRESH_MS is 1 s: a few seconds at most, even on a busy machine.
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
    const after = await send();
    expect(after.status).toBe(401);
    expect(after.body.error).toMatch(/invalid or revoked API key/);
    const listed = await runCli(['keys', 'list', '--format', 'json'], { env });
    const rows = JSON.parse(listed.stdout) as Record<string, unknown>[];
    expect(rows.find((r) => r.id === key.id)).toMatchObject({ tenant: 'initech', revoked: expect.any(String) });
    expect(listed.stdout).not.toContain(key.key);
  });

  it('never writes an API key to its log, wherever a client puts it', async () => {
    const key = keys.acme!.key;
    await api(base, `/v1/usage?from=${from}&to=${to}&api_key=${key}`, { headers: auth('acme') });
    await api(base, `/nowhere?key=${key}`);
    await api(base, '/v1/events', { method: 'POST', headers: { authorization: `Bearer ${key}x`, 'content-type': 'application/json' }, body: '{}' });
    await waitFor('the requests to be logged', () => gatewayLog.includes('/nowhere'), 5_000);
    expect(gatewayLog).toContain('"msg":"request"');
    expect(gatewayLog).not.toContain(key);
    expect(gatewayLog).not.toContain(keys.globex!.key);
    expect(gatewayLog).not.toContain(key.slice(-43));
  });
});
