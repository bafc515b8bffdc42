/**
 * The producer SDK as a user gets it: `npm pack` the project (built first: `npm run build`),
 * install the tarball into a copy of examples/publisher, run its publish.js against a dev broker,
 * and read the topic back. Also compiles the example's TypeScript against the shipped types.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import { createDecoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { validateEvent } from '../../src/domain/usage-event';
import { PROJECT_ROOT } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';

const TOPIC = 'usage.events';
const EXTRA = 2_500;
const EXAMPLE = path.join(PROJECT_ROOT, 'examples', 'publisher');

async function consumeAll(broker: TestBroker, expected: number): Promise<{ partition: number; message: KafkaMessage }[]> {
  const consumer = kafkaFor(broker).consumer({ groupId: `verify-sdk-${Date.now()}`, ...TEST_CONSUMER_TIMINGS });
  const got: { partition: number; message: KafkaMessage }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length}/${expected} messages arrived`)), 60_000);
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) got.push({ partition: batch.partition, message });
        if (got.length >= expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  // Anything beyond `expected` would still arrive within a fetch: give it the chance to show.
  await new Promise((r) => setTimeout(r, 500));
  await consumer.disconnect();
  return got;
}

describe('the producer SDK, installed from the packed tarball', () => {
  let broker: TestBroker;
  let dir: string;
  let app: string;
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    broker = await startTestBroker([{ name: TOPIC, partitions: 4 }]);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-sdk-'));
    let t = Date.now();
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], { cwd: PROJECT_ROOT, encoding: 'utf8' }),
    ) as { filename: string }[];
    timings.packMs = Date.now() - t;
    app = path.join(dir, 'app');
    fs.cpSync(EXAMPLE, app, { recursive: true });
    t = Date.now();
    // The registry is reachable for the tarball's dependencies, but the npm cache has them all.
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(dir, packed[0]!.filename)], {
      cwd: app,
      encoding: 'utf8',
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });
    timings.installMs = Date.now() - t;
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`publisher SDK test timings: ${JSON.stringify(timings)}\n`);
  });

  it('installs without the embedded ClickHouse engine', () => {
    expect(fs.existsSync(path.join(app, 'node_modules', 'meterline', 'dist', 'index.js'))).toBe(true);
    expect(fs.existsSync(path.join(app, 'node_modules', 'chdb'))).toBe(false);
  });

  it('publishes exactly the valid events, keyed so copies share a partition, and rejects the invalid one with its reason', async () => {
    // Two transient produce errors: retried through, nothing lost or reported failed.
    await broker.command('push_errors 0 2 NOT_LEADER_FOR_PARTITION');
    const t = Date.now();
    const out = execFileSync(process.execPath, ['publish.js', String(EXTRA)], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env.PATH, KAFKA_BROKERS: broker.bootstrapServers.join(',') },
    });
    timings.publishMs = Date.now() - t;
    const outcomes = out.trim().split('\n').map((l) => JSON.parse(l) as { status: string; id?: string; reason?: string });
    expect(outcomes).toHaveLength(4 + EXTRA);
    expect(outcomes.slice(0, 4)).toEqual([
      { status: 'published', id: 'order-1001' },
      { status: 'published', id: 'order-1002' },
      { status: 'published', id: 'order-1001' },
      { status: 'rejected', reason: 'value is negative: usage values must be zero or more' },
    ]);
    expect(outcomes.slice(4).every((o) => o.status === 'published')).toBe(true);

    const expected = 3 + EXTRA;
    const messages = await consumeAll(broker, expected);
    expect(messages).toHaveLength(expected);
    const decoded = await createDecoder().decodeMany(messages.map((m) => m.message.value));
    const events = decoded.map((d, i) => {
      if (!d.ok) throw new Error(`message ${i}: ${d.reason}`);
      const v = validateEvent(d.record, { now: Date.now(), maxFutureSkewMs: 60_000 });
      if (!v.ok) throw new Error(v.reason);
      return { event: v.event, key: messages[i]!.message.key!.toString(), partition: messages[i]!.partition };
    });
    const byId = new Map<string, typeof events>();
    for (const e of events) byId.set(e.event.id, [...(byId.get(e.event.id) ?? []), e]);

    expect(byId.get('order-1003')).toBeUndefined();
    const copies = byId.get('order-1001')!;
    expect(copies).toHaveLength(2);
    expect(new Set(copies.map((c) => c.partition)).size).toBe(1);
    expect(copies[0]!.key).toBe('acme\u001forder-1001');
    expect(copies[0]!.event).toMatchObject({ tenant: 'acme', customer: 'cus_1', meter: 'api.requests', value: '1', properties: {}, source: null });
    expect(byId.get('order-1002')![0]!.event).toMatchObject({ tenant: 'acme', customer: 'cus_2', meter: 'tokens', value: '1234.5', properties: { model: 'small' } });
    for (let i = 0; i < EXTRA; i += 1) {
      const [bulk, ...more] = byId.get(`bulk-${i}`) ?? [];
      expect(more).toEqual([]);
      expect(bulk).toMatchObject({ key: `acme\u001fbulk-${i}`, event: { tenant: 'acme', customer: `cus_${i % 7}`, value: '0.5', source: 'example' } });
    }
    // Several partitions were used: the key, not a single partition, decides.
    expect(new Set(events.map((e) => e.partition)).size).toBeGreaterThan(1);
  }, 120_000);

  it('ships types an application compiles against', () => {
    const tsc = path.join(PROJECT_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const t = Date.now();
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2022', '--types', 'node', '--typeRoots', path.join(PROJECT_ROOT, 'node_modules', '@types'), 'types-check.ts'], {
      cwd: app,
      encoding: 'utf8',
    });
    timings.typecheckMs = Date.now() - t;
  }, 60_000);
});
