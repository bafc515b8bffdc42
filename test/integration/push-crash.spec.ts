import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { TestBroker } from '../helpers/kafka';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { floorUnits, formatDecimal, parseDecimal } from '../../src/domain/decimal';
import { seededRandom } from '../../src/domain/sample';
import type { UsageEvent } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli } from '../helpers/cli';
import { exited, fakeStripeEnv, startWorkerProcess, workerEnv } from '../helpers/worker-process';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

/**
 * Rules 1 and 4 for the pusher: the worker (ingest + counters + pusher) is SIGKILLed at random
 * moments at least 10 times while counters change and the fake Stripe answers 429s, 500s and
 * timeouts after accepting. At the end, per (customer, meter), Stripe holds exactly floor(local
 * total), and no identifier was ever sent with two different values.
 */
const METER_EVENTS = '/v1/billing/meter_events';
const TOPIC = 'usage.events';
const CUSTOMERS = 12;
const CYCLES = 11;

describe('pusher under SIGKILL and Stripe faults', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let fake: FakeStripe;
  let publisher: Publisher;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: 4 },
      { name: `${TOPIC}.dlq`, partitions: 4 },
    ], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'api_calls', formula: 'sum' });
    publisher = await createPublisher({ kafka, topic: TOPIC, encoder: createSingleObjectEncoder() });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-push-crash-'));
    fs.writeFileSync(
      path.join(dir, 'meters.yaml'),
      [
        'meters:',
        '  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1d, stripe: { event_name: tokens } }',
        '  - { name: api_calls, aggregation: count, window: minute, allowed_lateness: 1d, stripe: { event_name: api_calls } }',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(dir, 'customers.csv'),
      ['tenant,customer,stripe_customer_id', ...Array.from({ length: CUSTOMERS }, (_, i) => `acme,c${i},cus_${i}`)].join('\n'),
    );
    env = workerEnv(broker, 'push-crash', path.join(dir, 'data'), { METERS_FILE: path.join(dir, 'meters.yaml'), ...fakeStripeEnv(fake) });
    const imported = await runCli(['customers', 'import', path.join(dir, 'customers.csv')], { env });
    expect(imported.code).toBe(0);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await publisher?.close();
    await fake?.close();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Stripe ends with exactly floor(local total) per customer and meter after 11 SIGKILLs', async () => {
    const rnd = seededRandom(5);
    const truth = new Map<string, bigint>(); // cus_i/meter → exact local units
    let seq = 0;
    const slice = (): UsageEvent[] =>
      Array.from({ length: 300 }, () => {
        seq += 1;
        const customer = Math.floor(rnd() * CUSTOMERS);
        const meter = rnd() < 0.5 ? 'tokens' : 'api_calls';
        const value = meter === 'tokens' ? formatDecimal(BigInt(Math.floor(rnd() * 5000)) * 1_000_000n) : '1'; // thousandths
        const key = `cus_${customer}/${meter}`;
        const units = meter === 'tokens' ? (parseDecimal(value) as { units: bigint }).units : 1_000_000_000n;
        truth.set(key, (truth.get(key) ?? 0n) + units);
        // Spread over the last few minutes: several windows change per cycle, some "late".
        return { id: `pc-${seq}`, tenant: 'acme', customer: `c${customer}`, meter, value, timestamp: Date.now() - Math.floor(rnd() * 5 * 60_000), properties: {}, source: null };
      });

    // Faults sprinkled over the whole run.
    const faultKinds = [
      // On meter events only: the worker's start-up check of the Stripe meters (GET /v1/billing/meters)
      // holds every meter until it succeeds, and faults queued faster than anything consumes them
      // would keep it from ever succeeding.
      () => fake.inject({ kind: 'status', status: 429, path: METER_EVENTS }),
      () => fake.inject({ kind: 'status', status: 500, path: METER_EVENTS }),
      () => fake.inject({ kind: 'status', status: 500, stage: 'after-accept', path: METER_EVENTS }),
      () => fake.inject({ kind: 'timeout-after-accept', mode: 'reset', path: METER_EVENTS }),
      () => fake.inject({ kind: 'timeout-after-accept', mode: 'truncate', path: METER_EVENTS }),
    ];
    let injected = 0;
    const faults = setInterval(() => {
      faultKinds[Math.floor(rnd() * faultKinds.length)]!();
      injected += 1;
    }, 150);

    const debugLog = process.env.PUSH_CRASH_LOG ? fs.createWriteStream(process.env.PUSH_CRASH_LOG) : null;
    const start = () => startWorkerProcess(debugLog ? { ...env, LOG_LEVEL: 'info' } : env, (d) => debugLog?.write(d));

    let kills = 0;
    try {
      for (let cycle = 0; cycle < CYCLES; cycle += 1) {
        const callsBefore = fake.calls().filter((c) => c.path === '/v1/billing/meter_events').length;
        const c = start();
        await publisher.publish(slice());
        // Kill once the new worker is pushing, at a random moment within the next 800 ms.
        debugLog?.write(`--- cycle ${cycle}\n`);
        await waitFor('the worker to call Stripe', () => fake.calls().filter((x) => x.path === '/v1/billing/meter_events').length > callsBefore, 60_000, 50);
        await new Promise((r) => setTimeout(r, Math.floor(rnd() * 800)));
        c.kill('SIGKILL');
        await exited(c);
        kills += 1;
      }
    } finally {
      clearInterval(faults);
      // Faults stop here: the ones still queued (hundreds, at one per 150 ms over the cycles) would
      // only measure the back-off of the settling worker, not its correctness.
      fake.clearFaults();
    }
    expect(kills).toBeGreaterThanOrEqual(10);
    expect(injected).toBeGreaterThan(20);

    // A last worker settles everything: resends what was pending, pushes what is left.
    const last = start();
    const expected = new Map([...truth].map(([k, units]) => [k, floorUnits(units)]));
    await waitFor(
      'Stripe to hold floor(local total) for every customer and meter',
      () => [...expected].every(([k, v]) => fake.totalFor(k.split('/')[0]!, k.split('/')[1]!) === v),
      120_000,
      200,
    );
    last.kill('SIGTERM');
    expect(await exited(last)).toEqual({ code: 0, signal: null });

    expect(fake.identifierConflicts()).toEqual([]);
    const attempts = fake.identifierLog();
    expect(attempts.filter((a) => a.outcome === 'accepted').length).toBe(new Set(attempts.filter((a) => a.outcome === 'accepted').map((a) => a.identifier)).size);
    // Reconcile agrees, and nothing is left pending (faults still queued are not reconcile's test).
    fake.clearFaults();
    const reconciled = await runCli(['reconcile', '--from', new Date(Date.now() - 3_600_000).toISOString(), '--to', new Date(Date.now() + 3_600_000).toISOString(), '--format', 'json'], { env });
    expect(reconciled.stderr).toBe('');
    const report = JSON.parse(reconciled.stdout) as { ok: boolean; drift: { drift: string }[]; held: unknown[] };
    expect(report.drift.every((d) => d.drift === '0')).toBe(true);
    expect(report.held).toEqual([]);
    expect(reconciled.code).toBe(0);
    const events = [...truth.keys()].length;
    const accepted = attempts.filter((a) => a.outcome === 'accepted').length;
    // The whole point of deltas: far fewer Stripe events than usage events.
    expect(accepted).toBeLessThan(seq / 2);
    process.stdout.write(`push-crash: ${seq} usage events, ${events} streams, ${accepted} meter events accepted by Stripe, ${attempts.length} attempts, ${kills} kills, ${injected} faults\n`);
  }, 600_000);
});
