import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestBroker } from '../helpers/kafka';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { generateEvents } from '../../src/domain/sample';
import { partitionKey } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { freePort } from '../helpers/prometheus';
import { waitFor } from '../helpers/wait';
import { exited, startWorkerProcess, waitForGroupCaughtUp } from '../helpers/worker-process';

/**
 * The Stripe key and the ClickHouse password never appear in logs (at debug level, errors
 * included), in /metrics, in `meterline config`, or in the message of a worker that fails to
 * reach ClickHouse — even when the server quotes the credentials back in its error.
 */
const TOPIC = 'usage.events';
const random = () => randomBytes(12).toString('hex');
const STRIPE_KEY = `sk_test_${random()}`;
const WEBHOOK_SECRET = `whsec_${random()}`;
const CH_PASSWORD = `chpw${random()}`;
const SECRETS = [STRIPE_KEY, WEBHOOK_SECRET, CH_PASSWORD];

function expectNoSecret(where: string, text: string) {
  for (const s of SECRETS) expect({ where, leaks: text.includes(s) }).toEqual({ where, leaks: false });
}

describe('secrets stay out of logs, metrics and errors', () => {
  let broker: TestBroker;
  let fake: FakeStripe;
  let dir: string;

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 2 },
      { name: `${TOPIC}.dlq`, partitions: 2 },
    ]);
    fake = await startFakeStripe({ apiKey: STRIPE_KEY });
    for (const name of ['api_calls', 'tokens', 'gpu_seconds']) fake.addMeter({ event_name: name, formula: 'sum' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-secrets-'));
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await fake?.close();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a worker pushing to Stripe with a key, at debug level and through Stripe errors, never logs or exports it', async () => {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      KAFKA_BROKERS: broker.bootstrapServers.join(','),
      KAFKA_GROUP_ID: 'secrets-test',
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      KAFKA_MAX_WAIT_MS: '100',
      METERLINE_DATA_DIR: path.join(dir, 'data'),
      METRICS_PORT: String(port),
      LOG_LEVEL: 'debug',
      STRIPE_API_KEY: STRIPE_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      STRIPE_HOST: '127.0.0.1',
      STRIPE_PORT: String(fake.port),
      STRIPE_PROTOCOL: 'http',
      CLICKHOUSE_PASSWORD: CH_PASSWORD, // unused by the embedded engine, but configured: it must not show either
    };
    const csv = path.join(dir, 'customers.csv');
    fs.writeFileSync(csv, ['tenant,customer,stripe_customer_id', ...[0, 1].flatMap((t) => Array.from({ length: 5 }, (_, c) => `tenant-${t},cust-${c},cus_${t}x${c}`))].join('\n'));
    const imported = await runCli(['customers', 'import', csv], { env });
    expect(imported.code).toBe(0);
    const config = await runCli(['config'], { env });
    expect(config.code).toBe(0);
    expect(config.stdout).toContain('[redacted]');
    expectNoSecret('meterline config', config.stdout + config.stderr);

    let logs = '';
    const worker = startWorkerProcess(env, (d) => (logs += d.toString()));
    worker.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
    try {
      // Stripe misbehaves for a while: errors are where credentials tend to leak.
      fake.inject({ kind: 'status', status: 500 });
      fake.inject({ kind: 'status', status: 502 });
      fake.inject({ kind: 'status', status: 429 });
      const kafka = kafkaFor(broker);
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      const encoder = createSingleObjectEncoder();
      const events = generateEvents({ count: 300, seed: 3, customers: 5, start: Date.now() - 10 * 60_000, spanMs: 5 * 60_000 });
      await producer.send({ topic: TOPIC, acks: -1, messages: await Promise.all(events.map(async (e) => ({ key: partitionKey(e), value: await encoder.encode(e) }))) });
      await producer.disconnect();
      await waitForGroupCaughtUp(kafka, 'secrets-test', TOPIC);
      await waitFor('pushes to reach Stripe', () => fake.acceptedEvents().length > 0, 60_000, 250);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(metrics).toMatch(/meterline_stripe_calls_total\{status="2xx"\} [1-9]/);
      expectNoSecret('/metrics', metrics);
      const health = (await (await fetch(`http://127.0.0.1:${port}/health/ready`)).text()) + (await (await fetch(`http://127.0.0.1:${port}/health/live`)).text());
      expectNoSecret('/health', health);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    expect(logs).toContain('"module":"ingest"');
    expectNoSecret('worker logs', logs);
  });

  it('a worker that cannot reach ClickHouse fails without printing the password (closed port, password in the URL too)', async () => {
    const closed = await freePort();
    for (const url of [`http://127.0.0.1:${closed}`, `http://meterline:${CH_PASSWORD}@127.0.0.1:${closed}`]) {
      const r = await runCli(['run', '--no-demo'], {
        env: { CLICKHOUSE_URL: url, CLICKHOUSE_USER: 'meterline', CLICKHOUSE_PASSWORD: CH_PASSWORD, STRIPE_API_KEY: STRIPE_KEY, METERLINE_DATA_DIR: path.join(dir, 'data2'), LOG_LEVEL: 'debug' },
        timeoutMs: 60_000,
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/ECONNREFUSED/);
      expectNoSecret(`failed start against ${url.replace(CH_PASSWORD, '***')}`, r.stdout + r.stderr);
    }
  });

  it('a ClickHouse server that quotes the credentials back in its error does not get them printed', async () => {
    // A hostile (or merely chatty) server: its error text contains the user and password it was sent.
    const server = http.createServer((req, res) => {
      const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
      const sent = `${basic} ${String(req.headers['x-clickhouse-key'] ?? '')}`;
      req.resume();
      res.writeHead(500, { 'x-clickhouse-exception-code': '516' }).end(`Code: 516. DB::Exception: ${sent}: Authentication failed. (AUTHENTICATION_FAILED)\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await runCli(['run', '--no-demo'], {
        env: { CLICKHOUSE_URL: `http://127.0.0.1:${port}`, CLICKHOUSE_USER: 'meterline', CLICKHOUSE_PASSWORD: CH_PASSWORD, METERLINE_DATA_DIR: path.join(dir, 'data3'), LOG_LEVEL: 'debug' },
        timeoutMs: 60_000,
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('Authentication failed');
      expect(r.stderr).toContain('[redacted]');
      expectNoSecret('failed start against a server quoting the password', r.stdout + r.stderr);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
