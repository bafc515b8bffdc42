/**
 * Security through the built CLI (`npm run build` first): a worker process ingesting two tenants
 * that share customer and event ids and pushing to a fake Stripe; `meterline query` and
 * `dlq list` under injection attempts in every filter; the worker's HTTP endpoint; and secrets
 * on error paths (config errors, ClickHouse connection errors, Stripe authentication failures).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Kafka } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { listeningAddresses } from '../helpers/listening';
import { createPublisher } from '../../src/adapters/kafka/publisher';
import type { UsageEvent } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';
import { exited, startWorkerProcess, waitForGroupCaughtUp } from '../helpers/worker-process';

const TOPIC = 'usage.events';
const HOUR = 3_600_000;
const NOW = Date.now();
const THIS_HOUR = Math.floor(NOW / HOUR) * HOUR;
const FROM = new Date(THIS_HOUR - 24 * HOUR).toISOString();
const TO = new Date(THIS_HOUR + HOUR).toISOString();
/** A marker inside every secret below: it must never appear in any output. */
const MARK = 'S3CRETx9';

describe('security through the CLI and the worker process', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let fake: FakeStripe;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;
  let worker: ChildProcess | undefined;
  let workerLog = '';

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 1 },
      { name: `${TOPIC}.dlq`, partitions: 1 },
    ]);
    kafka = kafkaFor(broker);
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'api_calls', formula: 'sum' });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-security-'));
    env = {
      KAFKA_BROKERS: broker.bootstrapServers.join(','),
      KAFKA_GROUP_ID: 'security-test',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      KAFKA_MAX_WAIT_MS: '100',
      METERLINE_DATA_DIR: dataDir,
      METRICS_PORT: '0',
      LOG_LEVEL: 'info',
      STRIPE_API_KEY: fake.apiKey,
      STRIPE_WEBHOOK_SECRET: fake.webhookSecret,
      STRIPE_HOST: '127.0.0.1',
      STRIPE_PORT: String(fake.port),
      STRIPE_PROTOCOL: 'http',
    };

    // Two tenants, the same customer id and the same event ids, different values.
    const ev = (tenant: string, id: string, value: string, meter = 'tokens'): UsageEvent => ({ id, tenant, customer: 'cust-1', meter, value, timestamp: THIS_HOUR + 60_000, properties: {}, source: null });
    const events = [ev('a', 'e-1', '10.5'), ev('b', 'e-1', '7.25'), ev('b', 'e-2', '100'), ev('a', 'e-3', '1', 'api_calls'), ev('b', 'e-3', '1', 'api_calls')];
    const publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });
    await publisher.publish(events);
    await publisher.close();

    const csv = path.join(dataDir, 'customers.csv');
    fs.writeFileSync(csv, 'tenant,customer,stripe_customer_id\na,cust-1,cus_A\nb,cust-1,cus_B\n');
    const imported = await runCli(['customers', 'import', csv], { env: { ...env, LOG_LEVEL: 'warn' } });
    expect(imported.code).toBe(0);

    worker = startWorkerProcess(env, (d) => (workerLog += d.toString()));
    await waitForGroupCaughtUp(kafka, 'security-test', TOPIC, 60_000);
    // Every stream's push (each one its own concurrent call): tokens and api_calls of both tenants.
    await waitFor(
      'pushes for both tenants',
      () => fake.totalFor('cus_A', 'tokens') === 10n && fake.totalFor('cus_B', 'tokens') === 107n && fake.totalFor('cus_A', 'api_calls') === 1n && fake.totalFor('cus_B', 'api_calls') === 1n,
      30_000,
      100,
    );
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    await fake?.close();
    await broker?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const workerUrl = () => {
    const line = workerLog.split('\n').find((l) => l.includes('metrics endpoint listening'));
    return (JSON.parse(line!) as { url: string }).url.replace(/\/metrics$/, '');
  };
  const get = (url: string, method = 'GET', headers: Record<string, string> = {}, body?: string) =>
    new Promise<{ status: number | null; body: string; error?: string }>((resolve) => {
      const req = http.request(url, { method, headers, agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? null, body: b }));
      });
      req.on('error', (err) => resolve({ status: null, body: '', error: err.message }));
      req.end(body);
    });

  it("the worker pushed each tenant's usage to its own Stripe customer", () => {
    expect(fake.totalFor('cus_A', 'tokens')).toBe(10n);
    expect(fake.totalFor('cus_B', 'tokens')).toBe(107n);
    expect(fake.totalFor('cus_A', 'api_calls')).toBe(1n);
    expect(fake.totalFor('cus_B', 'api_calls')).toBe(1n);
    expect(fake.identifierConflicts()).toEqual([]);
  });

  it("the worker's HTTP endpoint listens on 127.0.0.1 only, refuses what it does not serve, and keeps serving", async () => {
    const url = workerUrl();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The kernel's socket table, not a connection attempt: no traffic leaves 127.0.0.0/8.
    expect(listeningAddresses(Number(new URL(url).port))).toEqual(['127.0.0.1']);
    expect((await get(`${url}/../../etc/passwd`)).status).toBe(404);
    expect((await get(`${url}/metrics`, 'POST', {}, 'x')).status).toBe(405);
    const unsigned = await get(`${url}/webhooks/stripe`, 'POST', { 'content-type': 'application/json' }, '{"id":"evt_1","type":"v1.billing.meter.no_meter_found"}');
    expect([unsigned.status, unsigned.body]).toEqual([400, 'invalid signature\n']);
    const expired = fake.webhooks.noMeterFound({ errorTypes: [{ code: 'no_meter', samples: [{ identifier: 'x' }] }] });
    const old = fake.webhooks.sign(expired.payload, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    expect((await get(`${url}/webhooks/stripe`, 'POST', { 'stripe-signature': old }, expired.payload)).status).toBe(400);
    expect((await get(`${url}/metrics`)).status).toBe(200);
    // Nothing the worker logged holds a secret.
    for (const secret of [fake.apiKey, fake.webhookSecret]) expect(workerLog.includes(secret)).toBe(false);
  });

  describe('after the worker stopped', () => {
    beforeAll(async () => {
      worker!.kill('SIGTERM');
      expect(await exited(worker!)).toEqual({ code: 0, signal: null });
    });
    const quiet = () => ({ ...env, LOG_LEVEL: 'warn' });
    const query = (...args: string[]) => runCli(['query', '--from', FROM, '--to', TO, '--format', 'json', ...args], { env: quiet() });

    it("`meterline query --tenant a` shows only a's usage, and --tenant b only b's", async () => {
      const a = await query('--tenant', 'a');
      expect(a.code).toBe(0);
      const rowsA = JSON.parse(a.stdout) as { tenant: string; customer: string; meter: string; value: string }[];
      expect(rowsA.map((r) => [r.tenant, r.customer, r.meter, r.value])).toEqual([
        ['a', 'cust-1', 'api_calls', '1'],
        ['a', 'cust-1', 'tokens', '10.5'],
      ]);
      const rowsB = JSON.parse((await query('--tenant', 'b')).stdout) as { tenant: string; meter: string; value: string }[];
      expect(rowsB.map((r) => [r.tenant, r.meter, r.value])).toEqual([
        ['b', 'api_calls', '1'],
        ['b', 'tokens', '107.25'],
      ]);
    });

    it('treats hostile values in every filter as plain values: nothing, or a clean error; never SQL, never another tenant', async () => {
      // (NUL cannot reach a process through argv at all: execve takes C strings.)
      const hostile = [
        "' OR 1=1 --",
        "a' OR tenant = 'b",
        "a') OR ('1'='1",
        'a\\',
        "\\' OR 1=1 --",
        '{tenant:String}',
        '{x:String}',
        "a'; DROP TABLE usage_events; --",
        'a\u001fb',
        'a\u0001',
        '%',
        '*',
        'A',
        ' a',
        'a'.repeat(100_000),
      ];
      // Each value through one filter in turn (a CLI start costs a second; security.spec.ts runs
      // every value through every filter of the same query functions in process).
      const bad: unknown[] = [];
      for (const [i, h] of hostile.entries()) {
        const filter = i % 4;
        const r =
          filter === 3
            ? await runCli(['dlq', 'list', '--reason', h, '--format', 'json'], { env: quiet() })
            : await query(...[['--tenant', h], ['--tenant', 'a', '--customer', h], ['--tenant', 'a', '--meter', h]][filter]!);
        if (r.code !== 0 || r.stdout.trim() !== '[]') bad.push({ filter, h: h.slice(0, 40), code: r.code, out: r.stdout.slice(0, 200), err: r.stderr.slice(0, 200) });
      }
      expect(bad).toEqual([]);
      for (const h of ["' OR 1=1 --", '{from:Int64}']) {
        const r = await runCli(['query', '--tenant', 'a', '--from', h, '--to', TO], { env: quiet() });
        expect([r.code, r.stdout]).toEqual([2, '']);
        expect(r.stderr).toMatch(/must be an ISO-8601 date/);
      }
      // Still intact.
      expect(JSON.parse((await query('--tenant', 'b')).stdout)).toHaveLength(2);
    });

    it('prints no secret in configuration errors', async () => {
      const r = await runCli(['config'], {
        env: {
          ...quiet(),
          STRIPE_API_KEY: `sk_live_${MARK}-has-a-dash`,
          STRIPE_WEBHOOK_SECRET: `no-prefix-${MARK}`,
          CLICKHOUSE_URL: `ftp://user:${MARK}@127.0.0.1:8123`,
          SCHEMA_REGISTRY_URL: `http//user:${MARK}@registry`,
          KAFKA_BROKERS: `user:${MARK}@broker`,
          CLICKHOUSE_DATABASE: `db;${MARK}`,
        },
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/invalid configuration/);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(6);
      expect(r.stdout + r.stderr).not.toContain(MARK);
    });

    it('prints no secret in `meterline config`', async () => {
      const r = await runCli(['config'], {
        env: {
          ...quiet(),
          STRIPE_API_KEY: `sk_test_${MARK}1`,
          STRIPE_WEBHOOK_SECRET: `whsec_${MARK}2`,
          CLICKHOUSE_URL: `http://user:${MARK}3@127.0.0.1:8123`,
          CLICKHOUSE_PASSWORD: `${MARK}4`,
          SCHEMA_REGISTRY_URL: `http://user:${MARK}5@127.0.0.1:8081`,
          SCHEMA_REGISTRY_PASSWORD: `${MARK}6`,
        },
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\[redacted\]/);
      expect(r.stdout + r.stderr).not.toContain(MARK);
    });

    it('prints no ClickHouse password when the server cannot be reached or refuses the credentials', async () => {
      // A stand-in ClickHouse answering every request the way a server refusing the password does.
      const refusing = http.createServer((req, res) => {
        req.resume();
        res.writeHead(516, { 'x-clickhouse-exception-code': '516', 'content-type': 'text/plain' }).end('Code: 516. DB::Exception: user: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n');
      });
      await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', () => r()));
      const port = (refusing.address() as AddressInfo).port;
      try {
        for (const [name, extra] of [
          ['password in the URL, nothing listening', { CLICKHOUSE_URL: `http://user:${MARK}@127.0.0.1:1` }],
          ['CLICKHOUSE_PASSWORD, nothing listening', { CLICKHOUSE_URL: 'http://127.0.0.1:1', CLICKHOUSE_USER: 'user', CLICKHOUSE_PASSWORD: MARK }],
          ['password in the URL, refused', { CLICKHOUSE_URL: `http://user:${MARK}@127.0.0.1:${port}` }],
          ['CLICKHOUSE_PASSWORD, refused', { CLICKHOUSE_URL: `http://127.0.0.1:${port}`, CLICKHOUSE_USER: 'user', CLICKHOUSE_PASSWORD: MARK }],
        ] as const) {
          for (const args of [['query', '--tenant', 'a', '--from', FROM, '--to', TO], ['migrate'], ['stats']]) {
            const r = await runCli(args, { env: { ...quiet(), ...extra }, timeoutMs: 60_000 });
            expect({ name, args: args[0], failed: r.code !== 0, leaked: (r.stdout + r.stderr).includes(MARK) }).toEqual({ name, args: args[0], failed: true, leaked: false });
          }
        }
      } finally {
        await new Promise<void>((r) => refusing.close(() => r()));
      }
    });

    it('prints no Stripe key when Stripe refuses it (401)', async () => {
      const wrongKey = `sk_test_${MARK}wrongkey`;
      const r = await runCli(['reconcile', '--from', FROM, '--to', TO], { env: { ...quiet(), STRIPE_API_KEY: wrongKey }, timeoutMs: 60_000 });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/Invalid API Key|authentication|401/i);
      expect(r.stdout + r.stderr).not.toContain(MARK);
      expect(r.stdout + r.stderr).not.toMatch(/sk_(test|live)_[A-Za-z0-9*]{4,}/);
    });
  });
});
