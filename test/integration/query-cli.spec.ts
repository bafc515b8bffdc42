import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { createPublisher } from '../../src/adapters/kafka/publisher';
import type { UsageEvent } from '../../src/domain/usage-event';
import { runCli } from '../helpers/cli';
import { exited, startWorkerProcess, waitForGroupCaughtUp } from '../helpers/worker-process';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';

const T = (iso: string) => Date.parse(iso);
const TOPIC = 'usage.events';

describe('meterline query', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let dataDir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    broker = await startTestBroker([
      // One partition: the watermark is that partition's, so window states are predictable.
      { name: TOPIC, partitions: 1 },
      { name: `${TOPIC}.dlq`, partitions: 1 },
    ]);
    kafka = kafkaFor(broker);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-query-'));
    env = { KAFKA_BROKERS: broker.bootstrapServers.join(','), KAFKA_GROUP_ID: 'query-test', KAFKA_SESSION_TIMEOUT_MS: '6000', KAFKA_HEARTBEAT_INTERVAL_MS: '500', KAFKA_MAX_WAIT_MS: '100', METERLINE_DATA_DIR: dataDir, METRICS_PORT: '0', LOG_LEVEL: 'error' };

    // api_calls (count, hour) and tokens (sum, hour) from the project's meters.yaml, two customers.
    const base: Omit<UsageEvent, 'id' | 'customer' | 'meter' | 'value' | 'timestamp'> = { tenant: 'acme', properties: {}, source: null };
    const events: UsageEvent[] = [
      { ...base, id: 'q1', customer: 'c1', meter: 'tokens', value: '1.5', timestamp: T('2026-11-20T10:05:00Z') },
      { ...base, id: 'q2', customer: 'c1', meter: 'tokens', value: '2.25', timestamp: T('2026-11-20T10:55:00Z') },
      { ...base, id: 'q3', customer: 'c1', meter: 'tokens', value: '4', timestamp: T('2026-11-20T11:00:00Z') },
      { ...base, id: 'q4', customer: 'c2', meter: 'api_calls', value: '1', timestamp: T('2026-11-20T10:30:00Z') },
      { ...base, id: 'q5', customer: 'c2', meter: 'api_calls', value: '1', timestamp: T('2026-11-20T10:31:00Z') },
      { ...base, id: 'q1', customer: 'c1', meter: 'tokens', value: '1.5', timestamp: T('2026-11-20T10:05:00Z') }, // a copy
      { ...base, tenant: 'other', id: 'o1', customer: 'c1', meter: 'tokens', value: '1000', timestamp: T('2026-11-20T10:05:00Z') },
      // Moves the watermark to 12:59:55: window 10:00 is final (end + 1 h lateness), 11:00 closed.
      { ...base, tenant: 'other', id: 'o2', customer: 'c1', meter: 'tokens', value: '1', timestamp: T('2026-11-20T13:00:00Z') },
    ];
    const publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });
    await publisher.publish(events);
    await publisher.close();

    const worker = startWorkerProcess(env);
    await waitForGroupCaughtUp(kafka, 'query-test', TOPIC, 60_000);
    // While the worker holds the embedded engine, other commands reach it through the worker
    // (README quick start: `meterline stats` in another terminal), never a second engine.
    const live = await runCli(['stats', '--json'], { env });
    expect(live.stderr).toBe('');
    expect(JSON.parse(live.stdout)).toMatchObject({ accounting: { accepted: events.length - 1, duplicates: 1 } });
    worker.kill('SIGTERM');
    await exited(worker);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await broker?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const query = (...args: string[]) => runCli(['query', '--tenant', 'acme', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', ...args], { env });

  it('prints exact values per meter window as JSON', async () => {
    const r = await query('--format', 'json');
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual([
      { tenant: 'acme', customer: 'c1', meter: 'tokens', window_start: '2026-11-20T10:00:00.000Z', window_end: '2026-11-20T11:00:00.000Z', value: '3.75', events: 2, state: 'final' },
      { tenant: 'acme', customer: 'c1', meter: 'tokens', window_start: '2026-11-20T11:00:00.000Z', window_end: '2026-11-20T12:00:00.000Z', value: '4', events: 1, state: 'closed' },
      { tenant: 'acme', customer: 'c2', meter: 'api_calls', window_start: '2026-11-20T10:00:00.000Z', window_end: '2026-11-20T11:00:00.000Z', value: '2', events: 2, state: 'final' },
    ]);
  });

  it('rolls windows up per day and filters by customer and meter', async () => {
    const r = await query('--customer', 'c1', '--meter', 'tokens', '--window', 'day', '--format', 'json');
    expect(JSON.parse(r.stdout)).toEqual([
      { tenant: 'acme', customer: 'c1', meter: 'tokens', window_start: '2026-11-20T00:00:00.000Z', window_end: '2026-11-21T00:00:00.000Z', value: '7.75', events: 3, state: 'closed' },
    ]);
  });

  it('prints CSV with a header and a table with aligned columns', async () => {
    const csv = await query('--format', 'csv', '--meter', 'api_calls');
    expect(csv.stdout).toBe('tenant,customer,meter,window_start,window_end,value,events,state\nacme,c2,api_calls,2026-11-20T10:00:00.000Z,2026-11-20T11:00:00.000Z,2,2,final\n');
    const table = await query('--meter', 'api_calls');
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^tenant\s+customer\s+meter\s+window_start\s+window_end\s+value\s+events\s+state$/);
    expect(lines[2]).toMatch(/^acme\s+c2\s+api_calls\s+2026-11-20T10:00:00.000Z\s+2026-11-20T11:00:00.000Z\s+2\s+2\s+final$/);
  });

  it('refuses a window finer than the meter counts in', async () => {
    const r = await query('--window', 'minute', '--meter', 'tokens');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/counted per hour: --window minute is finer/);
  });

  it('treats injection attempts in every argument as plain values or rejects them', async () => {
    const hostile = ["acme' OR '1'='1", "x'; DROP TABLE meterline.usage_events; --", 'acme) OR (1=1', '\\', "' UNION SELECT * FROM system.users --"];
    for (const h of hostile) {
      for (const flag of ['--tenant', '--customer', '--meter']) {
        const args = ['query', '--tenant', 'acme', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', '--format', 'json', flag, h];
        const r = await runCli(args, { env });
        expect({ h, flag, code: r.code, out: r.stdout }).toEqual({ h, flag, code: 0, out: '[]\n' });
      }
      for (const flag of ['--from', '--to']) {
        const r = await runCli(['query', '--tenant', 'acme', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', flag, h], { env });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/must be an ISO-8601 date/);
      }
      for (const flag of ['--window', '--format']) {
        const r = await runCli(['query', '--tenant', 'acme', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z', flag, h], { env });
        expect(r.code).not.toBe(0);
        expect(r.stderr).toMatch(/Allowed choices are/);
      }
    }
    // Nothing was harmed: the data is all still there.
    const after = await query('--format', 'json');
    expect(JSON.parse(after.stdout)).toHaveLength(3);
  });
});
