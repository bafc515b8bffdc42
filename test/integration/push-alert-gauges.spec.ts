/**
 * Failed and held pushes are gauges of the push ledger's current state, so their alerts stay on
 * until a person settles the pushes: the worker's health monitor counts them in ClickHouse, and
 * `meterline pushes resolve` (through the CLI, against a ClickHouse over HTTP) brings them to 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { pushStatusCounts } from '../../src/adapters/clickhouse/ledger-stats';
import { migrate } from '../../src/adapters/clickhouse/migrations';
import { createPushStore, settledStatuses, type PushStore } from '../../src/adapters/clickhouse/push-store';
import type { PlannedPush } from '../../src/domain/push-plan';
import { startHealthMonitor, type HealthMonitor } from '../../src/pipeline/health-monitor';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics, type Metrics } from '../../src/runtime/metrics';
import { CLI, PROJECT_ROOT, runCli } from '../helpers/cli';
import { waitFor } from '../helpers/wait';

const DATABASE = 'meterline';
const HOUR = 3_600_000;

function push(identifier: string, customer: string, value: bigint): PlannedPush {
  return {
    identifier,
    tenant: 'acme',
    customer,
    meter: 'tokens',
    eventName: 'tokens',
    stripeCustomerId: `cus_${customer}`,
    windowStart: Math.floor(Date.now() / HOUR) * HOUR - HOUR,
    value,
    timestamp: Math.floor(Date.now() / 1000) - 3600,
    mode: 'delta',
    pushedFrom: 0n,
    pushedTo: value,
  };
}

async function gauge(metrics: Metrics, name: string): Promise<number> {
  const m = (await metrics.registry.getSingleMetric(name)!.get()).values[0];
  return m?.value ?? 0;
}

describe('failed and held pushes as gauges of the ledger', () => {
  let dataDir: string;
  let server: ChildProcess;
  let url: string;
  let ch: ClickHouseClient;
  let pushes: PushStore;
  let metrics: Metrics;
  let health: HealthMonitor;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // A ClickHouse over HTTP that this test and the CLI both use: the dev server on a temp directory.
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-gauges-'));
    server = spawn(process.execPath, [CLI, 'dev-clickhouse', '--port', '0'], { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH, METERLINE_DATA_DIR: dataDir, LOG_LEVEL: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n') && line) resolve(line.trim());
      });
      server.once('exit', (code) => reject(new Error(`dev-clickhouse exited ${code}`)));
    });
    env = { CLICKHOUSE_URL: url, METERLINE_DATA_DIR: dataDir, LOG_LEVEL: 'error' };
    ch = createClient({ url });
    await migrate(ch, DATABASE);
    pushes = createPushStore(ch, DATABASE);
    metrics = createMetrics({ defaultMetrics: false });
    health = startHealthMonitor({
      offsets: { read: async () => [], close: async () => undefined },
      pingClickHouse: async () => undefined,
      pushStatusCounts: () => pushStatusCounts(ch, DATABASE),
      pushStatusEveryMs: 100,
      metrics,
      clock: Date.now,
      logger: silentLogger(),
      stallMs: 2_000,
      pollMs: 100,
    });
  }, 60_000);

  afterAll(async () => {
    await health?.stop();
    await ch?.close();
    server?.kill('SIGTERM');
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports failed and held pushes until a person resolves them, and only then', async () => {
    const now = Date.now();
    const failed = push('ml_failed_1', 'c1', 7n);
    const held = push('ml_held_1', 'c2', 3n);
    await pushes.record(push('ml_ok_1', 'c3', 5n), 'reported', { attempts: 1, createdAt: now, now });
    await pushes.record(failed, 'pending', { attempts: 0, createdAt: now, now });
    await pushes.record(failed, 'failed', { attempts: 3, createdAt: now, now: now + 1, lastError: 'resource_missing: No such customer' });
    await pushes.record(held, 'held', { attempts: 1, createdAt: now, now, lastError: 'pending for more than 24 h' });

    await waitFor('gauges to show 1 failed and 1 held push', async () => (await gauge(metrics, 'meterline_stripe_pushes_failed')) === 1 && (await gauge(metrics, 'meterline_stripe_pushes_held')) === 1, 10_000, 50);
    // Still there later: nothing but a person changes the ledger's state.
    await new Promise((r) => setTimeout(r, 500));
    expect(await gauge(metrics, 'meterline_stripe_pushes_failed')).toBe(1);

    // Only failed and held pushes can be resolved; unknown identifiers are named.
    const refused = await runCli(['pushes', 'resolve', 'ml_ok_1', 'ml_nope', '--note', 'x'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('not resolved ml_ok_1: it is reported');
    expect(refused.stdout).toContain('not resolved ml_nope: no such push');

    const r = await runCli(['pushes', 'resolve', 'ml_failed_1', 'ml_held_1', '--note', 'billed by hand on in_123'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('resolved ml_failed_1 (was failed: acme/c1/tokens, value 7)');
    expect(r.stdout).toContain('resolved ml_held_1 (was held: acme/c2/tokens, value 3)');

    await waitFor('gauges back to 0', async () => (await gauge(metrics, 'meterline_stripe_pushes_failed')) === 0 && (await gauge(metrics, 'meterline_stripe_pushes_held')) === 0, 10_000, 50);
    const [settled] = await pushes.list({ identifiers: ['ml_failed_1'] });
    expect(settled).toMatchObject({ status: 'resolved', lastError: 'failed: resource_missing: No such customer | resolved: billed by hand on in_123' });
    // Their value still counts as pushed: the pusher never sends it again.
    expect((await pushes.pushedDeltas(settledStatuses(false))).get('acme\u0000c1\u0000tokens')).toBe(7n);
  }, 60_000);
});
