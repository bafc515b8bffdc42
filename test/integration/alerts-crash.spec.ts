import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Consumer, Kafka } from 'kafkajs';
import { decodeAlert } from '../../src/adapters/alerts/alert-codec';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { formatDecimal } from '../../src/domain/decimal';
import { seededRandom } from '../../src/domain/sample';
import type { UsageEvent } from '../../src/domain/usage-event';
import { ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhook } from '../../src/domain/webhook-signature';
import { billingPeriodOf } from '../../src/domain/windows';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS, type TestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';
import { exited, startWorkerProcess, workerEnv } from '../helpers/worker-process';

/**
 * Exactly one alert per crossing (customer, meter, period, threshold), on the topic and at the
 * webhook, while the worker is SIGKILLed: once inside the protocol right after `pending` is
 * recorded, once right after the alert is published (before `published` is recorded), and
 * several times at random moments while thresholds are being crossed. The webhook receiver
 * fails a share of first attempts, so retries happen too; every delivery must be correctly signed.
 */
const TOPIC = 'usage.events';
const ALERTS = 'usage.alerts';
const SECRET = 'whsec_alerts_crash_test_secret';
const LIMITS: Record<string, { limit: bigint; thresholds: bigint[] }> = {
  // meter-wide, then a customer's own (c0), then a count meter
  tokens: { limit: 1000n, thresholds: [50n, 80n, 100n] },
  'tokens/c0': { limit: 100n, thresholds: [100n] },
  api_calls: { limit: 40n, thresholds: [50n, 100n] },
};

interface Delivery {
  id: string | undefined;
  bodyId: string;
  verified: boolean;
}

describe('usage alerts under SIGKILL', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let publisher: Publisher;
  let alertsReader: Consumer;
  let receiver: http.Server;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const onTopic: { key: string; crossing: string }[] = [];
  const deliveries: Delivery[] = [];

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 4 },
      { name: `${TOPIC}.dlq`, partitions: 4 },
      { name: ALERTS, partitions: 2 },
    ], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });

    // Everything ever written to the alerts topic.
    alertsReader = kafka.consumer({ groupId: 'alerts-crash-reader', ...TEST_CONSUMER_TIMINGS });
    await alertsReader.connect();
    await alertsReader.subscribe({ topics: [ALERTS], fromBeginning: true });
    await alertsReader.run({
      eachMessage: async ({ message }) => {
        const a = decodeAlert(message.value!);
        expect(message.key!.toString()).toBe(a.alertId);
        onTopic.push({ key: a.alertId, crossing: `${a.customer}/${a.meter}@${formatDecimal(a.thresholdUnits)}/${a.periodStart}` });
      },
    });

    // A webhook receiver that refuses about a third of the requests (retries must follow).
    const rnd = seededRandom(19);
    receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (rnd() < 0.33) {
          res.writeHead(503).end();
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
        const verified = verifyWebhook(SECRET, { timestamp: header(TIMESTAMP_HEADER), signature: header(SIGNATURE_HEADER) }, body, Math.floor(Date.now() / 1000)).ok;
        deliveries.push({ id: header(ALERT_ID_HEADER), bodyId: (JSON.parse(body) as { id: string }).id, verified });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));

    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-alerts-crash-'));
    fs.writeFileSync(
      path.join(dir, 'meters.yaml'),
      [
        'meters:',
        '  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1d }',
        '  - { name: api_calls, aggregation: count, window: minute, allowed_lateness: 1d }',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(dir, 'allotments.yaml'),
      [
        'allotments:',
        '  - { tenant: acme, meter: tokens, limit: "1000", thresholds: [50, 80, 100] }',
        '  - { tenant: acme, meter: tokens, customer: c0, limit: 100, thresholds: [100] }',
        '  - { tenant: acme, meter: api_calls, limit: 40, thresholds: [50, 100] }',
      ].join('\n'),
    );
    env = workerEnv(broker, 'alerts-crash', path.join(dir, 'data'), {
      METERS_FILE: path.join(dir, 'meters.yaml'),
      ALLOTMENTS_FILE: path.join(dir, 'allotments.yaml'),
      ALERT_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/usage`,
      ALERT_WEBHOOK_SECRET: SECRET,
    });
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await alertsReader?.disconnect();
    await publisher?.close();
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends exactly one alert per crossing to the topic and one alert id per crossing to the webhook, all signed', async () => {
    const rnd = seededRandom(7);
    const totals = new Map<string, bigint>(); // customer/meter/periodStart → whole units
    let seq = 0;
    const usage = (customer: string, meter: 'tokens' | 'api_calls', value: bigint): UsageEvent => {
      seq += 1;
      const timestamp = Date.now() - Math.floor(rnd() * 60_000);
      const key = `${customer}/${meter}/${billingPeriodOf(timestamp, 1).start}`;
      totals.set(key, (totals.get(key) ?? 0n) + value);
      return { id: `ac-${seq}`, tenant: 'acme', customer, meter, value: String(value), timestamp, properties: {}, source: null };
    };
    const debugLog = process.env.ALERTS_CRASH_LOG ? fs.createWriteStream(process.env.ALERTS_CRASH_LOG) : null;
    // Logs at info level, kept: the webhook secret must appear in none of them.
    const logs: Buffer[] = [];
    const start = (extra: NodeJS.ProcessEnv = {}) =>
      startWorkerProcess({ ...env, LOG_LEVEL: 'info', ...extra }, (d) => {
        logs.push(d);
        debugLog?.write(d);
      });

    // 1. Killed right after recording `pending`: nothing reaches the topic.
    const a = start({ CHAOS_ALERT_KILL_AT: 'after_pending' });
    await publisher.publish([usage('c1', 'tokens', 300n), usage('c1', 'tokens', 300n)]); // c1: 600 ≥ 50 %
    expect(await exitedWithin(a, 90_000)).toEqual({ code: null, signal: 'SIGKILL' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(onTopic).toEqual([]);

    // 2. Killed right after publishing (before `published` is recorded): the pending alert was
    //    not on the topic, so this worker published it.
    const b = start({ CHAOS_ALERT_KILL_AT: 'after_publish' });
    expect(await exitedWithin(b, 90_000)).toEqual({ code: null, signal: 'SIGKILL' });
    await waitFor('the recovered alert on the topic', () => onTopic.length === 1, 10_000);

    // 3. Thresholds crossed while workers are SIGKILLed at random moments.
    const slices: UsageEvent[][] = [
      [usage('c1', 'tokens', 250n), usage('c2', 'tokens', 510n), usage('c0', 'tokens', 60n)], // c1 850: 80 %; c2: 50 %
      [usage('c2', 'tokens', 300n), usage('c0', 'tokens', 40n), ...Array.from({ length: 25 }, () => usage('c3', 'api_calls', 1n))], // c2 810: 80 %; c0 100: 100 %; c3 25: 50 %
      [usage('c1', 'tokens', 150n), usage('c2', 'tokens', 400n), ...Array.from({ length: 20 }, () => usage('c3', 'api_calls', 1n))], // c1 1000, c2 1210: 100 %; c3 45: 100 %
      [usage('c4', 'tokens', 2000n), usage('c5', 'tokens', 499n)], // c4: all three at once; c5: none
    ];
    let kills = 0;
    for (const slice of slices) {
      const before = onTopic.length;
      const w = start();
      await publisher.publish(slice);
      // Killed once this worker alerts, at a random moment within the next 1.5 s (mid-batch or later).
      await waitFor('the worker to publish an alert', () => onTopic.length > before, 90_000, 20);
      await new Promise((r) => setTimeout(r, Math.floor(rnd() * 1500)));
      w.kill('SIGKILL');
      await exited(w);
      kills += 1;
    }
    expect(kills).toBe(4);

    // 4. A last worker settles everything.
    const expected = new Set<string>();
    for (const [key, total] of totals) {
      const [customer, meter, period] = key.split('/') as [string, string, string];
      const allotment = LIMITS[`${meter}/${customer}`] ?? LIMITS[meter]!;
      for (const pct of allotment.thresholds) if (total * 100n >= allotment.limit * pct) expected.add(`${customer}/${meter}@${pct}/${period}`);
    }
    expect(expected.size).toBe(12);
    const last = start();
    await waitFor('every crossing on the topic', () => new Set(onTopic.map((x) => x.crossing)).size === expected.size, 120_000, 100);
    await waitFor('every crossing at the webhook', () => new Set(deliveries.map((d) => d.id)).size === expected.size, 120_000, 100);
    // Time for any duplicate to show: a few of the alerter's cycles.
    await new Promise((r) => setTimeout(r, 4000));
    last.kill('SIGTERM');
    expect(await exited(last)).toEqual({ code: 0, signal: null });
    debugLog?.end();

    // The topic: the expected crossings, each exactly once, under one id each.
    expect(new Set(onTopic.map((x) => x.crossing))).toEqual(expected);
    expect(onTopic.length).toBe(expected.size);
    expect(new Set(onTopic.map((x) => x.key)).size).toBe(expected.size);
    // The webhook: one alert id per crossing (deliveries may repeat an id: at least once), the
    // same ids as the topic's, every delivery signed correctly and naming its own alert.
    const topicIds = new Set(onTopic.map((x) => x.key));
    expect(new Set(deliveries.map((d) => d.id))).toEqual(topicIds);
    expect(deliveries.filter((d) => !d.verified || d.id !== d.bodyId)).toEqual([]);
    const logText = Buffer.concat(logs).toString('utf8');
    expect(logText).toContain('usage alerts published');
    expect(logText).not.toContain(SECRET);
    process.stdout.write(`alerts-crash: ${seq} usage events, ${expected.size} crossings, ${onTopic.length} alerts on the topic, ${deliveries.length} webhook deliveries, ${kills + 2} SIGKILLs\n`);
  }, 600_000);
});

async function exitedWithin(child: Parameters<typeof exited>[0], ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      exited(child),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`the worker did not exit within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
