import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { generateEvents } from '../../src/domain/sample';
import { partitionKey } from '../../src/domain/usage-event';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { freePort, hasPromtool, promtool, startPrometheus, type TestPrometheus } from '../helpers/prometheus';
import { waitFor } from '../helpers/wait';
import { exited, startWorkerProcess, waitForGroupCaughtUp } from '../helpers/worker-process';

/**
 * What an operator sees: a real Prometheus scrapes a running worker every second while events
 * flow, and its HTTP API answers with the accepted-events rate and the consumer lag; the
 * worker's /metrics passes `promtool check metrics`; the health probes answer.
 */
const TOPIC = 'usage.events';
const GROUP = 'observability-test';
const PARTITIONS = 4;
const describeIf = hasPromtool('the Prometheus observability test') ? describe : describe.skip;

describeIf('observability: Prometheus scraping a worker while events flow', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let dataDir: string;
  let worker: ChildProcess;
  let prometheus: TestPrometheus;
  let workerUrl: string;
  let logs = '';

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: PARTITIONS },
      { name: `${TOPIC}.dlq`, partitions: PARTITIONS },
    ]);
    kafka = kafkaFor(broker);
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-obs-'));
    const port = await freePort();
    workerUrl = `http://127.0.0.1:${port}`;
    worker = startWorkerProcess(
      {
        KAFKA_BROKERS: broker.bootstrapServers.join(','),
        KAFKA_GROUP_ID: GROUP,
        KAFKA_SESSION_TIMEOUT_MS: '6000',
        KAFKA_HEARTBEAT_INTERVAL_MS: '500',
        KAFKA_MAX_WAIT_MS: '100',
        METERLINE_DATA_DIR: dataDir,
        METRICS_PORT: String(port),
        LOG_LEVEL: 'info',
      },
      (d) => (logs += d.toString()),
    );
    await waitFor('the worker to be ready', async () => (await fetch(`${workerUrl}/health/ready`).catch(() => null))?.status === 200, 90_000, 250);
    prometheus = await startPrometheus(`127.0.0.1:${port}`);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await prometheus?.stop();
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    await producer?.disconnect();
    await broker?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports the accepted-events rate and the lag through Prometheus, and totals that match what was published', async () => {
    const started = Date.now();
    const encoder = createSingleObjectEncoder();
    const events = generateEvents({ count: 3000, seed: 7, duplicateRate: 0.1, customers: 10 });
    const uniqueIds = new Set(events.map((e) => `${e.tenant}/${e.id}`)).size;
    const messages = await Promise.all(events.map(async (e) => ({ key: partitionKey(e), value: await encoder.encode(e) })));
    const garbage = 20;
    for (let i = 0; i < garbage; i += 1) messages.splice(i * 100, 0, { key: `junk-${i}`, value: Buffer.from(`not avro ${i}`) });

    // About 12 s of steady traffic: 100 messages every 400 ms; Prometheus asked as it flows.
    const rates: number[] = [];
    let lagSeries: { metric: Record<string, string>; value: [number, string] }[] = [];
    const publishStart = Date.now();
    for (let i = 0; i < messages.length; i += 100) {
      await producer.send({ topic: TOPIC, acks: -1, messages: messages.slice(i, i + 100) });
      await new Promise((r) => setTimeout(r, 400));
      if (i >= 1000) {
        rates.push(Number((await prometheus.query('sum(rate(meterline_events_accepted_total[5s]))'))[0]?.value[1] ?? 0));
        if (i === 2000) lagSeries = await prometheus.query('meterline_consumer_lag');
      }
    }
    const sentPerSecond = (uniqueIds * 1000) / (Date.now() - publishStart);
    const rate = Math.max(...rates);
    const lagWhileFlowing = lagSeries.reduce((n, s) => n + Number(s.value[1]), 0);
    process.stdout.write(
      `observability: published ${sentPerSecond.toFixed(0)} unique events/s; Prometheus accepted rate ${rates.map((r) => r.toFixed(0)).join(', ')}/s; ` +
        `lag ${lagWhileFlowing} over ${lagSeries.length} partitions mid-stream\n`,
    );
    // A sensible rate: of the order of what was published (rate() extrapolates, so not exact).
    expect(rate).toBeGreaterThan(sentPerSecond / 4);
    expect(rate).toBeLessThan(sentPerSecond * 4);
    expect(lagSeries.map((s) => s.metric.partition).sort()).toEqual(['0', '1', '2', '3']);
    for (const s of lagSeries) expect(Number(s.value[1])).toBeGreaterThanOrEqual(0);
    expect(lagWhileFlowing).toBeLessThan(messages.length);

    // Once caught up, Prometheus' view of the totals is exact and the lag drains to zero.
    await waitForGroupCaughtUp(kafka, GROUP, TOPIC);
    const scalar = async (q: string) => Number((await prometheus.query(q))[0]?.value[1] ?? NaN);
    await waitFor('Prometheus to see every accepted event', async () => (await scalar('sum(meterline_events_accepted_total)')) === uniqueIds, 30_000, 500);
    await waitFor('the lag to drain to zero', async () => (await scalar('sum(meterline_consumer_lag)')) === 0, 30_000, 500);
    expect(await scalar('sum(meterline_events_consumed_total)')).toBe(messages.length);
    expect(await scalar('sum(meterline_events_duplicate_total)')).toBe(events.length - uniqueIds); // byte-identical copies: no conflicts
    expect(await scalar('sum(meterline_events_rejected_total)')).toBe(garbage);
    expect(await scalar('meterline_ready')).toBe(1);
    expect(await scalar('meterline_consumer_assigned_partitions')).toBe(PARTITIONS);
    expect(await scalar('up{job="meterline"}')).toBe(1);
    expect(await scalar('sum(meterline_event_aggregation_latency_seconds_count)')).toBeGreaterThan(0);
    await waitFor('the dedupe store to be sized', async () => (await scalar('meterline_dedupe_store_rows')) >= uniqueIds, 30_000, 1000);
    process.stdout.write(`observability: ${messages.length} messages in ${Date.now() - started} ms; dedupe store ${await scalar('meterline_dedupe_store_rows')} rows, ${await scalar('meterline_dedupe_store_bytes')} bytes\n`);
  });

  it("serves /metrics that passes `promtool check metrics`, with bounded labels", async () => {
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    const r = promtool(['check', 'metrics'], text);
    expect(r.output).toBe('');
    expect(r.status).toBe(0);
    // Never a tenant, customer or event id as a label.
    const labels = new Set([...text.matchAll(/[{,]([a-z_]+)="/g)].map((m) => m[1]!));
    expect([...labels].filter((l) => !['meter', 'reason', 'outcome', 'status', 'partition', 'le', 'version', 'major', 'minor', 'patch', 'type', 'kind', 'space', 'quantile'].includes(l))).toEqual([]);
    expect(text).not.toMatch(/tenant-\d|cust-\d|evt-7-/);
  });

  it('answers the health probes with JSON, and logs JSON lines with a module', async () => {
    const live = await fetch(`${workerUrl}/health/live`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${workerUrl}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok' });
    const lines = logs.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    const modules = new Set(lines.map((l) => (JSON.parse(l) as { module?: string }).module).filter(Boolean));
    expect(modules).toContain('ingest');
    expect(modules).toContain('health');
  });
});
