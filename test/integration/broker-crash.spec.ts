import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { floorUnits, formatDecimal, parseDecimal } from '../../src/domain/decimal';
import { seededRandom, toNdjsonLine } from '../../src/domain/sample';
import type { UsageEvent } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli, spawnCli } from '../helpers/cli';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, type TestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';
import { exited, fakeStripeEnv, startWorkerProcess, waitForGroupCaughtUp, workerEnv } from '../helpers/worker-process';

/**
 * Apache Kafka itself dies. While `meterline publish` streams events (a process fed through its
 * stdin, as `tail -f … | meterline publish` would be) and a worker ingests and pushes them:
 * 1. the broker is SIGKILLed and restarted on the same log directory a moment later: the
 *    publisher and the worker carry on by themselves, neither is restarted;
 * 2. the broker and the worker are SIGKILLed together (a host going down), and both start again:
 *    what the worker had committed to Kafka must already have been durable in ClickHouse (the
 *    first worker's ClickHouse is slowed down, so the kill lands mid-store).
 * At the end every event the publisher acknowledged is counted exactly once in ClickHouse and at
 * the (fake) Stripe, and every message is in exactly one place (accepted + duplicates + rejected
 * = produced).
 */
const TOPIC = 'usage.events';
const GROUP = 'broker-crash';
const CUSTOMERS = 8;
const GARBAGE = 25;

describe('Apache Kafka broker crash under a running publisher and worker', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let fake: FakeStripe;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const children = new Set<ChildProcess>();

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 4 },
      { name: `${TOPIC}.dlq`, partitions: 1 },
    ], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'api_calls', formula: 'sum' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-broker-crash-'));
    fs.writeFileSync(
      path.join(dir, 'meters.yaml'),
      [
        'meters:',
        '  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1d, stripe: { event_name: tokens } }',
        '  - { name: api_calls, aggregation: count, window: minute, allowed_lateness: 1d, stripe: { event_name: api_calls } }',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dir, 'customers.csv'), ['tenant,customer,stripe_customer_id', ...Array.from({ length: CUSTOMERS }, (_, i) => `acme,c${i},cus_${i}`)].join('\n'));
    env = workerEnv(broker, GROUP, path.join(dir, 'data'), { METERS_FILE: path.join(dir, 'meters.yaml'), ...fakeStripeEnv(fake) });
    expect((await runCli(['customers', 'import', path.join(dir, 'customers.csv')], { env })).code).toBe(0);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const c of children) {
      c.kill('SIGKILL');
      await exited(c);
    }
    await fake?.close();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('publisher and worker recover by themselves; every acknowledged event is counted exactly once', async () => {
    const apache = broker.apache!;
    const rnd = seededRandom(15);
    const truth = new Map<string, { events: number; units: bigint }>(); // c<i>/meter
    let seq = 0;
    let lines = 0;
    const emitted: UsageEvent[] = [];
    const nextLines = (n: number): string[] =>
      Array.from({ length: n }, () => {
        lines += 1;
        // 8 % exact copies of an earlier event, some sent long after their original.
        if (emitted.length > 0 && rnd() < 0.08) return toNdjsonLine(emitted[Math.floor(rnd() * emitted.length)]!);
        seq += 1;
        const customer = `c${Math.floor(rnd() * CUSTOMERS)}`;
        const meter = rnd() < 0.5 ? 'tokens' : 'api_calls';
        const value = meter === 'tokens' ? formatDecimal(BigInt(Math.floor(rnd() * 5000)) * 1_000_000n) : '1';
        const t = truth.get(`${customer}/${meter}`) ?? { events: 0, units: 0n };
        truth.set(`${customer}/${meter}`, { events: t.events + 1, units: t.units + (parseDecimal(value) as { units: bigint }).units });
        const e: UsageEvent = { id: `bc-${seq}`, tenant: 'acme', customer, meter, value, timestamp: Date.now() - Math.floor(rnd() * 3 * 60_000), properties: {}, source: null };
        emitted.push(e);
        return toNdjsonLine(e);
      });

    const admin = kafka.admin();
    await admin.connect();
    const topicEnd = async () => (await admin.fetchTopicOffsets(TOPIC)).reduce((n, p) => n + Number(p.high), 0);
    const committed = async () =>
      ((await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] }))[0]?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    const sinceUp = (fn: () => Promise<number>, before: number) => async () => (await fn().catch(() => before)) > before;

    const bad = kafka.producer();
    await bad.connect();
    await bad.send({ topic: TOPIC, messages: Array.from({ length: GARBAGE }, (_, i) => ({ key: `bad-${i}`, value: Buffer.from(`garbage ${i}`) })) });
    await bad.disconnect();

    // The first worker's ClickHouse answers slowly (every call 300 ms late, logged), so step 2 can
    // kill it at a precise moment: while a unit's ledger write waits, i.e. decided but not yet
    // durable. A worker that committed (or otherwise marked seen) before the write finished would
    // lose that unit there; the totals below would show it.
    let armed = false;
    let onLedgerWrite: () => void = () => undefined;
    const ledgerWriteWaiting = new Promise<void>((resolve) => (onLedgerWrite = resolve));
    let worker = startWorkerProcess(
      { ...env, LOG_LEVEL: 'warn', LOG_FORMAT: 'json', KAFKA_SESSION_TIMEOUT_MS: '10000', CHAOS_CLICKHOUSE_FAULTS: 'slow=1,slow_ms=300', CHAOS_SEED: '15' },
      (d) => {
        if (armed && /"kind":"slow"[^\n]*"table":"[^"]*usage_events"/.test(d.toString())) onLedgerWrite();
      },
    );
    children.add(worker);
    const publisher = spawnCli(['publish', '--json'], { env: { ...env, LOG_LEVEL: 'error' } });
    children.add(publisher);
    let publisherOut = '';
    publisher.stdout!.on('data', (d: Buffer) => (publisherOut += d.toString()));
    let publisherErr = '';
    publisher.stderr!.on('data', (d: Buffer) => (publisherErr += d.toString()));
    // 100 lines every 100 ms until told to stop (~1,000 events/s), whatever the broker is doing:
    // a publisher that cannot send must queue, then catch up, never drop.
    let feeding = true;
    const feed = (async () => {
      while (feeding) {
        publisher.stdin!.write(nextLines(100).join('\n') + '\n');
        await new Promise((r) => setTimeout(r, 100));
      }
      publisher.stdin!.end();
    })();

    const figures: Record<string, number> = {};
    try {
      await waitFor('the worker to commit progress', sinceUp(committed, 0), 90_000, 100);

      // 1. The broker alone: nobody else is restarted.
      const killedAt = Date.now();
      await apache.kill();
      await new Promise((r) => setTimeout(r, 2_000));
      await apache.restart();
      const upAt = Date.now();
      figures.outage1Ms = upAt - killedAt;
      const endAtUp = await topicEnd();
      const committedAtUp = await committed();
      await waitFor('the publisher to produce again', sinceUp(topicEnd, endAtUp), 120_000, 100);
      figures.publisherRecoveryMs = Date.now() - upAt;
      await waitFor('the worker to commit again', sinceUp(committed, committedAtUp), 120_000, 100);
      figures.workerRecoveryMs = Date.now() - upAt;
      expect(worker.exitCode).toBeNull();
      expect(publisher.exitCode).toBeNull();
      await new Promise((r) => setTimeout(r, 3_000));

      // 2. The broker and the worker together, while the worker's ledger write waits; the worker
      //    comes back as a supervisor would start it.
      armed = true;
      await ledgerWriteWaiting;
      const killed2At = Date.now();
      worker.kill('SIGKILL');
      await Promise.all([apache.kill(), exited(worker)]);
      await new Promise((r) => setTimeout(r, 2_000));
      await apache.restart();
      figures.outage2Ms = Date.now() - killed2At;
      worker = startWorkerProcess(env);
      children.add(worker);
      await new Promise((r) => setTimeout(r, 3_000));
    } finally {
      feeding = false;
      await feed;
    }
    const published = await exited(publisher);
    // On failure, what the publisher said (LOG_LEVEL=error: its errors only) is in the diff.
    expect({ ...published, stderr: published.code === 0 ? '' : publisherErr.slice(-3_000) }).toEqual({ code: 0, signal: null, stderr: '' });
    const summary = JSON.parse(publisherOut) as { lines: number; published: number; rejected: number };
    expect(summary).toMatchObject({ lines, published: lines, rejected: 0 });

    await waitForGroupCaughtUp(kafka, GROUP, TOPIC, 180_000);
    const produced = await topicEnd();
    await admin.disconnect();

    // Stripe: exactly floor(total) per customer and meter.
    const expectedStripe = new Map([...truth].map(([k, t]) => [`cus_${k.split('/')[0]!.slice(1)}/${k.split('/')[1]}`, floorUnits(t.units)]));
    await waitFor(
      'Stripe to hold floor(local total) for every customer and meter',
      () => [...expectedStripe].every(([k, v]) => fake.totalFor(k.split('/')[0]!, k.split('/')[1]!) === v),
      120_000,
      200,
    );
    worker.kill('SIGTERM');
    expect(await exited(worker)).toEqual({ code: 0, signal: null });
    expect(fake.identifierConflicts()).toEqual([]);

    // ClickHouse: every event once, exact sums, and every message in exactly one place.
    const stats = await runCli(['stats', '--by-customer', '--json'], { env });
    expect(stats.code).toBe(0);
    const report = JSON.parse(stats.stdout) as {
      accounting: { accepted: number; duplicates: number; conflicts: number; rejected: number; classifiedTwice: number };
      totals: { customer: string; meter: string; events: number; value: string; counterValue: string }[];
    };
    const got = new Map(report.totals.map((t) => [`${t.customer}/${t.meter}`, { events: Number(t.events), units: (parseDecimal(t.value) as { units: bigint }).units }]));
    expect(got).toEqual(truth);
    for (const t of report.totals) expect(t.counterValue).toBe(t.value);
    const acc = report.accounting;
    expect(acc.accepted).toBe(seq);
    expect(acc.rejected).toBe(GARBAGE);
    expect(acc.conflicts).toBe(0);
    expect(acc.classifiedTwice).toBe(0);
    expect(acc.accepted + acc.duplicates + acc.conflicts + acc.rejected).toBe(produced);

    process.stdout.write(`broker-crash: ${JSON.stringify({ lines, events: seq, produced, ...figures })}\n`);
  }, 600_000);
});
