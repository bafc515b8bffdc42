import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { alertBenchAllotments, measureAlertLatency } from '../../bench/alerts';
import type { UsageAlert } from '../../src/adapters/alerts/alert-codec';
import { createAlertTopic, type AlertTopic } from '../../src/adapters/alerts/alert-topic';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createPublisher } from '../../src/adapters/kafka/publisher';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, type TestBroker } from '../helpers/kafka';
import { runCli } from '../helpers/cli';
import { exited, startWorkerProcess, workerEnv } from '../helpers/worker-process';

/**
 * The alerts topic on the dev broker (the broker of `npm start`), whose offsets-by-timestamp lookup
 * answers every query with the end offset: the scan that settles pending alerts must notice and
 * read from the start, or it would find nothing and publish an alert twice. And a smoke run of the
 * benchmark's latency hook against a real worker.
 */
const ALERTS = 'usage.alerts';
const alert = (id: string): UsageAlert => ({
  alertId: id,
  tenant: 'acme',
  customer: 'c1',
  meter: 'tokens',
  periodStart: Date.UTC(2026, 10, 1),
  periodEnd: Date.UTC(2026, 11, 1),
  thresholdUnits: 80_000_000_000n,
  limitUnits: 1_000_000_000_000n,
  totalUnits: 800_000_000_000n,
  detectedAt: Date.now(),
});

describe('alerts topic on the dev broker', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let topic: AlertTopic;

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: ALERTS, partitions: 3 },
      { name: 'usage.events', partitions: 2 },
      { name: 'usage.events.dlq', partitions: 1 },
    ], { kind: 'dev' });
    kafka = kafkaFor(broker);
    topic = await createAlertTopic(kafka, ALERTS);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await topic?.close();
    await broker?.stop();
  });

  it('finds an alert published after `since` even though the broker misanswers the timestamp lookup', async () => {
    const since = Date.now();
    await topic.publish([alert('alrt_a'), alert('alrt_b')]);
    const found = await topic.findPublished(new Set(['alrt_a', 'alrt_b', 'alrt_never']), since - 1000, 30_000);
    expect([...found].sort()).toEqual(['alrt_a', 'alrt_b']);
  });

  it('refuses to start with a bad allotments file, naming every problem and where it is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-bad-allotments-'));
    try {
      fs.writeFileSync(path.join(dir, 'meters.yaml'), 'meters:\n  - { name: tokens, aggregation: sum }\n');
      fs.writeFileSync(path.join(dir, 'allotments.yaml'), 'allotments:\n  - { tenant: acme, meter: tokenz, limit: 10 }\n  - { tenant: acme, meter: tokens, limit: "-5", thresholds: [80, 2000] }\n');
      const r = await runCli(['run', '--no-demo'], {
        env: workerEnv(broker, 'bad-allotments', path.join(dir, 'data'), { METERS_FILE: path.join(dir, 'meters.yaml'), ALLOTMENTS_FILE: path.join(dir, 'allotments.yaml') }),
        timeoutMs: 60_000,
      });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('allotments[0].meter: unknown meter "tokenz" (not in the meters file)');
      expect(r.stderr).toContain('allotments[1].limit: must be greater than 0');
      expect(r.stderr).toContain('allotments[1].thresholds[1]: must be a percentage above 0 and at most 1000');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports p50/p99 alert latency from a running worker (benchmark hook smoke test)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-alert-bench-'));
    fs.writeFileSync(path.join(dir, 'meters.yaml'), 'meters:\n  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1h }\n');
    fs.writeFileSync(path.join(dir, 'allotments.yaml'), alertBenchAllotments('bench', 'tokens', '100'));
    let logs = '';
    const worker = startWorkerProcess(
      workerEnv(broker, 'alert-bench', path.join(dir, 'data'), { METERS_FILE: path.join(dir, 'meters.yaml'), ALLOTMENTS_FILE: path.join(dir, 'allotments.yaml'), LOG_LEVEL: 'info' }),
      (d) => (logs += d.toString('utf8')),
    );
    const publisher = await createPublisher({ kafka, topic: 'usage.events', encoder: createSingleObjectEncoder() });
    try {
      // The worker alerts after its 5 s grace as partition 0's owner: the first crossings wait it out.
      const r = await measureAlertLatency({ kafka, publisher, alertsTopic: ALERTS, tenant: 'bench', meter: 'tokens', limit: '100', crossings: 3, spacingMs: 100, timeoutMs: 60_000 });
      expect(r).toMatchObject({ alertCrossings: 3, alertsReceived: 3 });
      expect(r.alertLatencyP50Ms).toBeGreaterThan(0);
      expect(r.alertLatencyP99Ms).toBeGreaterThanOrEqual(r.alertLatencyP50Ms!);
      process.stdout.write(`alert latency smoke (not a measurement): ${JSON.stringify(r)}\n`);
      // The metric: one series per meter and threshold, no tenant or customer label.
      const metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(logs)?.[1];
      expect(metricsUrl).toBeDefined();
      const scraped = await (await fetch(metricsUrl!)).text();
      expect(scraped).toContain('meterline_alerts_emitted_total{meter="tokens",threshold="100"} 4');
      expect(scraped.split('\n').filter((l) => l.startsWith('meterline_alert') && /tenant|customer/.test(l))).toEqual([]);
    } finally {
      await publisher.close();
      worker.kill('SIGTERM');
      await exited(worker);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
