import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { generateEvents, toNdjsonLine } from '../../src/domain/sample';
import { CLI, PROJECT_ROOT, runCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, type TestBroker } from '../helpers/kafka';
import { exited, startWorkerProcess, waitForGroupCaughtUp, workerEnv } from '../helpers/worker-process';

// What a user does with a shell: pipe a command into a slow reader (gzip, psql, a network copy),
// into another meterline, or into `head`. A command's output must be complete when it exits 0,
// and a command whose reader went away must not claim success.

const TOPIC = 'usage.events';
/**
 * A reader that takes the first byte, then pauses 3 s before reading on: by then the command has
 * written everything it will write, and most of it still waits in the pipe and in Node's queue.
 * (`dd bs=1 count=1` reads exactly one byte; `head -c 1` would swallow a whole buffer.)
 */
const SLOW_READER = '(dd bs=1 count=1 2>/dev/null; sleep 3; cat)';

interface Piped {
  /** Exit status of each command of the pipeline, as bash's PIPESTATUS reports it. */
  readonly statuses: number[];
  readonly stdout: Buffer;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `pipeline` with bash (pipefail off, so every status is reported) and collects its output. */
function pipeline(script: string, env: NodeJS.ProcessEnv, timeoutMs = 300_000): Promise<Piped> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn('bash', ['-c', `${script}; echo "PIPESTATUS \${PIPESTATUS[*]}" >&2`], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ML: `${process.execPath} ${CLI}`, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', () => {
      clearTimeout(timer);
      const m = /PIPESTATUS ([\d ]+)\n?$/.exec(stderr);
      if (!m) return reject(new Error(`no PIPESTATUS in stderr: ${stderr.slice(-2000)}`));
      resolve({ statuses: m[1]!.trim().split(' ').map(Number), stdout: Buffer.concat(out), stderr: stderr.slice(0, m.index), ms: Date.now() - started });
    });
  });
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('command output through pipes', () => {
  it('sample into a slow reader: every line, byte for byte, and exit 0', async () => {
    const expected = generateEvents({ count: 200_000, seed: 7, duplicateRate: 0.05 }).map(toNdjsonLine).join('\n') + '\n';
    // generateEvents spreads times around "now": compare everything but the timestamps' values.
    const r = await pipeline(`$ML sample -n 200000 --seed 7 --duplicates 0.05 | ${SLOW_READER}`, {});
    expect(r.statuses).toEqual([0, 0]);
    const lines = r.stdout.toString().split('\n');
    expect(lines.length).toBe(200_001);
    expect(lines.at(-1)).toBe('');
    const shape = (s: string) => s.replace(/"timestamp":\d+/g, '"timestamp":0');
    expect(sha256(shape(r.stdout.toString()))).toBe(sha256(shape(expected)));
    expect(r.stdout.length).toBeGreaterThan(64 * 1024 * 100);
  });

  it('sample into head -n 1 ends promptly and reports the lost output with a non-zero status', async () => {
    const r = await pipeline(`$ML sample -n 1000000 | head -n 1`, {});
    expect(r.stdout.toString().split('\n').filter(Boolean)).toHaveLength(1);
    // 141 = 128 + SIGPIPE: what a shell reports for a writer whose reader went away.
    expect(r.statuses).toEqual([141, 0]);
    // Generating 1,000,000 events alone takes ~1 s; writing them all would take several more.
    expect(r.ms).toBeLessThan(15_000);
  });

  describe('with a worker that stored events and dead letters', () => {
    let broker: TestBroker;
    let kafka: Kafka;
    let dataDir: string;
    let env: NodeJS.ProcessEnv;
    let ndjson: string;
    const GARBAGE = 1_500;

    beforeAll(async () => {
      broker = await startTestBroker([
        { name: TOPIC, partitions: 2 },
        { name: `${TOPIC}.dlq`, partitions: 1 },
      ]);
      kafka = kafkaFor(broker);
      dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-pipes-'));
      env = workerEnv(broker, 'pipes', dataDir);
      // 1,000 customers × 3 meters over two hours: thousands of windows, far more than a pipe holds.
      const events = generateEvents({ count: 20_000, seed: 5, tenants: 1, customers: 1_000, start: Date.parse('2026-11-20T10:00:00Z'), spanMs: 2 * 3_600_000 });
      ndjson = path.join(dataDir, 'events.ndjson');
      fs.writeFileSync(ndjson, events.map(toNdjsonLine).join('\n') + '\n');
      const published = await pipeline(`cat ${ndjson} | $ML publish --json`, env);
      expect(published.statuses).toEqual([0, 0]);
      expect(JSON.parse(published.stdout.toString())).toMatchObject({ published: 20_000, rejected: 0 });
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({ topic: TOPIC, messages: Array.from({ length: GARBAGE }, (_, i) => ({ key: `g${i}`, value: Buffer.from(`not avro ${i}`) })) });
      await producer.disconnect();

      const worker = startWorkerProcess(env);
      await waitForGroupCaughtUp(kafka, 'pipes', TOPIC, 120_000);
      worker.kill('SIGTERM');
      expect(await exited(worker)).toEqual({ code: 0, signal: null });
    }, BROKER_BUILD_TIMEOUT_MS);

    afterAll(async () => {
      await broker?.stop();
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });

    it('query --format csv into a slow reader is complete, byte for byte', async () => {
      const args = ['query', '--tenant', 'tenant-0', '--from', '2026-11-20T00:00:00Z', '--to', '2026-11-21T00:00:00Z'];
      const json = await runCli([...args, '--format', 'json'], { env });
      const windows = JSON.parse(json.stdout) as unknown[];
      expect(windows.length).toBeGreaterThan(4_000);
      const fast = await runCli([...args, '--format', 'csv'], { env });
      expect(fast.code).toBe(0);
      const slow = await pipeline(`$ML ${args.join(' ')} --format csv | ${SLOW_READER}`, env);
      expect(slow.statuses).toEqual([0, 0]);
      expect(slow.stdout.length).toBeGreaterThan(256 * 1024);
      expect(slow.stdout.toString()).toBe(fast.stdout);
      expect(slow.stdout.toString().trimEnd().split('\n')).toHaveLength(windows.length + 1);
    });

    it('dlq list into a slow reader lists every dead letter', async () => {
      const slow = await pipeline(`$ML dlq list --limit 100000 | ${SLOW_READER}`, env);
      expect(slow.statuses).toEqual([0, 0]);
      const lines = slow.stdout.toString().trimEnd().split('\n');
      expect(lines.at(-1)).toBe(`${GARBAGE} dead letter(s)`);
      // A table: a header, a rule, one row per dead letter (each naming its source offset), the count.
      const rows = lines.filter((l) => l.startsWith(`${TOPIC}/`));
      expect(rows).toHaveLength(GARBAGE);
      expect(lines).toHaveLength(GARBAGE + 3);
      expect(new Set(rows.map((l) => l.split(/\s+/)[0])).size).toBe(GARBAGE);
      expect(slow.stdout.length).toBeGreaterThan(64 * 1024);
    });
  });

  describe('sample | publish', () => {
    let broker: TestBroker;
    let kafka: Kafka;

    beforeAll(async () => {
      broker = await startTestBroker([{ name: TOPIC, partitions: 4 }]);
      kafka = kafkaFor(broker);
    }, BROKER_BUILD_TIMEOUT_MS);
    afterAll(async () => {
      await broker?.stop();
    });

    it('publishes all of 1,000,000 events', async () => {
      const env = { KAFKA_BROKERS: broker.bootstrapServers.join(','), METERLINE_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-pipes-')) };
      const r = await pipeline(`$ML sample -n 1000000 --duplicates 0.05 | $ML publish --json`, env, 600_000);
      expect(r.statuses).toEqual([0, 0]);
      expect(JSON.parse(r.stdout.toString())).toMatchObject({ lines: 1_000_000, published: 1_000_000, rejected: 0 });
      const admin = kafka.admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(TOPIC);
      await admin.disconnect();
      expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(1_000_000);
    }, 600_000);
  });
});
