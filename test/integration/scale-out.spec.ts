import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createClickHouse } from '../../src/adapters/clickhouse/client';
import type { TestBroker } from '../helpers/kafka';
import { loadConfig } from '../../src/config/config';
import { floorUnits, formatDecimal, parseDecimal } from '../../src/domain/decimal';
import { generateEvents, seededRandom } from '../../src/domain/sample';
import { partitionKey, type UsageEvent } from '../../src/domain/usage-event';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { runCli } from '../helpers/cli';
import { startDevClickHouse, type TestDevClickHouse } from '../helpers/dev-clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';
import { exited, fakeStripeEnv, startWorkerProcess, waitForGroupCaughtUp, workerEnv } from '../helpers/worker-process';

/**
 * Scale-out (issue 8): three workers in one consumer group share six partitions and one
 * ClickHouse (the dev server); the one that pushes to Stripe (the owner of partition 0) is
 * SIGKILLed mid-run and the other two take over its partitions and its pushes. At the end: exact per-customer/meter totals in the ledger and the counters,
 * every message accounted for once, and Stripe holding exactly floor(local total) per stream,
 * with no identifier ever sent with two values and no usage sent twice.
 */
const TOPIC = 'usage.events';
const GROUP = 'scale-out';
const PARTITIONS = 6;
const EVENTS = 30_000;

interface Worker {
  readonly name: string;
  readonly child: ChildProcess;
  /** Every assignment it logged, latest last. */
  readonly assignments: { at: number; partitions: number[] }[];
  /** When it became the pusher (logged when it gains partition 0). */
  readonly pusherSince: number[];
  /** When it finished a full push cycle (every stream planned: at a term's start, then every 5 minutes). */
  readonly fullCycles: number[];
  metricsUrl: string | null;
}

describe('scale-out: three workers, one killed', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let producer: Producer;
  let fake: FakeStripe;
  let ch: TestDevClickHouse;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  /** When the customer mappings were imported (a cycle counts a mapping imported within 30 s as a change). */
  let importedAt = 0;
  const workers: Worker[] = [];

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: TOPIC, partitions: PARTITIONS },
      { name: `${TOPIC}.dlq`, partitions: PARTITIONS },
    ], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'api_calls', formula: 'sum' });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-scale-out-'));
    fs.writeFileSync(
      path.join(dir, 'meters.yaml'),
      [
        'meters:',
        '  - { name: tokens, aggregation: sum, window: minute, allowed_lateness: 1d, stripe: { event_name: tokens } }',
        '  - { name: api_calls, aggregation: count, window: minute, allowed_lateness: 1d, stripe: { event_name: api_calls } }',
      ].join('\n'),
    );
    const mappings = [];
    for (let t = 0; t < 2; t += 1) for (let c = 0; c < 20; c += 1) mappings.push(`tenant-${t},cust-${c},cus_t${t}c${c}`);
    fs.writeFileSync(path.join(dir, 'customers.csv'), ['tenant,customer,stripe_customer_id', ...mappings].join('\n'));
    ch = await startDevClickHouse(path.join(dir, 'data'));
    env = workerEnv(broker, GROUP, path.join(dir, 'data'), { CLICKHOUSE_URL: ch.url, METERS_FILE: path.join(dir, 'meters.yaml'), ...fakeStripeEnv(fake), LOG_LEVEL: 'info' });
    importedAt = Date.now();
    const imported = await runCli(['customers', 'import', path.join(dir, 'customers.csv')], { env });
    expect(imported.stderr).toBe('');
    expect(imported.code).toBe(0);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    await producer?.disconnect();
    await fake?.close();
    if (ch) await ch.stop();
    await broker?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const startWorker = (name: string, workerEnvironment: NodeJS.ProcessEnv = env): Worker => {
    const debug = process.env.SCALE_OUT_LOG ? fs.createWriteStream(`${process.env.SCALE_OUT_LOG}.${name}`) : null;
    let pending = '';
    const w: Worker = {
      name,
      assignments: [],
      pusherSince: [],
      fullCycles: [],
      metricsUrl: null,
      child: startWorkerProcess(workerEnvironment, (d) => {
        debug?.write(d);
        pending += d.toString();
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          let rec: { msg?: string; partitions?: number[]; url?: string };
          try {
            rec = JSON.parse(line) as typeof rec;
          } catch {
            continue;
          }
          if (rec.msg === 'partitions assigned') w.assignments.push({ at: Date.now(), partitions: rec.partitions ?? [] });
          if (rec.msg === 'metrics endpoint listening') w.metricsUrl = rec.url ?? null;
          if (rec.msg?.startsWith('this worker owns partition 0')) w.pusherSince.push(Date.now());
          if (rec.msg === 'full push cycle done') w.fullCycles.push(Date.now());
        }
      }),
    };
    workers.push(w);
    return w;
  };
  const current = (w: Worker) => w.assignments.at(-1)?.partitions ?? [];
  /** The live workers' latest assignments split the partitions between them, none shared. */
  const sharedBy = (live: Worker[]) => {
    const all = live.flatMap(current).sort((a, b) => a - b);
    return all.length === PARTITIONS && all.every((p, i) => p === i) && live.every((w) => current(w).length > 0);
  };
  const committedPartitions = async (w: Worker) => {
    const text = await (await fetch(w.metricsUrl!)).text();
    return [...text.matchAll(/^meterline_ingest_committed_offset\{partition="(\d+)"\} (\d+)/gm)].filter((m) => Number(m[2]) > 0).map((m) => Number(m[1]));
  };

  it('shares the partitions, survives a SIGKILL by rebalancing, and ends exact in ClickHouse and at Stripe', async () => {
    const rnd = seededRandom(8);
    const encoder = createSingleObjectEncoder();
    // The workload: unique events, 10 % copies (all published in the second half, after the
    // kill), and a few bad messages (garbage bytes, an unknown meter).
    const generated = generateEvents({ count: EVENTS, seed: 8, duplicateRate: 0.1, meters: ['api_calls', 'tokens'], customers: 20 });
    const firsts: UsageEvent[] = [];
    const copies: UsageEvent[] = [];
    const seen = new Set<string>();
    for (const e of generated) {
      const k = `${e.tenant}\u0000${e.id}`;
      (seen.has(k) ? copies : firsts).push(e);
      seen.add(k);
    }
    const toMessages = async (events: UsageEvent[]) => {
      const out: { key: string; value: Buffer }[] = [];
      for (const e of events) {
        const r = rnd();
        if (r < 0.002) out.push({ key: 'garbage', value: Buffer.from(`not avro ${out.length}`) });
        else if (r < 0.004) {
          const bad: UsageEvent = { ...e, id: `${e.id}-x`, meter: 'no_such_meter' };
          out.push({ key: partitionKey(bad), value: await encoder.encode(bad) });
        }
        out.push({ key: partitionKey(e), value: await encoder.encode(e) });
      }
      return out;
    };
    const half = Math.floor(firsts.length / 2);
    const phase1 = await toMessages(firsts.slice(0, half));
    const phase2 = await toMessages([...firsts.slice(half), ...copies]);
    const produced = phase1.length + phase2.length;
    const publish = async (messages: { key: string; value: Buffer }[]) => {
      for (let i = 0; i < messages.length; i += 1000) await producer.send({ topic: TOPIC, acks: -1, messages: messages.slice(i, i + 1000) });
    };

    // Ground truth: the first copy of each (tenant, id) counts; api_calls counts events.
    const truth = new Map<string, { events: number; units: bigint }>();
    for (const e of firsts) {
      const g = `${e.tenant}/${e.customer}/${e.meter}`;
      const t = truth.get(g) ?? { events: 0, units: 0n };
      const v = parseDecimal(e.value);
      if (!v.ok) throw new Error(v.reason);
      truth.set(g, { events: t.events + 1, units: t.units + (e.meter === 'api_calls' ? 1_000_000_000n : v.units) });
    }

    // 1. Three workers join one group and split the six partitions.
    const started = Date.now();
    const [w0, w1, w2] = ['w0', 'w1', 'w2'].map((name) => startWorker(name)) as [Worker, Worker, Worker];
    await waitFor('three workers to share the six partitions', () => sharedBy([w0, w1, w2]), 60_000, 100);
    const joinedMs = Date.now() - started;
    expect(workers.every((w) => current(w).length === PARTITIONS / 3)).toBe(true);

    // 2. Half the events flow through all three; each commits on its own partitions.
    await publish(phase1);
    await waitFor('every worker to commit on its partitions', async () => (await Promise.all([w0, w1, w2].map(committedPartitions))).every((ps) => ps.length > 0), 60_000, 200);
    const before = await Promise.all([w0, w1, w2].map(committedPartitions));
    for (const [i, w] of [w0, w1, w2].entries()) expect(before[i]!.every((p) => current(w).includes(p))).toBe(true);

    // 3. SIGKILL the pusher (the owner of partition 0) mid-stream, once it is pushing, while the
    //    second half is being published: its partitions and its pushes must both be taken over.
    await waitFor('the pusher to call Stripe', () => fake.calls().some((c) => c.path === '/v1/billing/meter_events'), 60_000, 100);
    const victim = [w0, w1, w2].find((w) => current(w).includes(0))!;
    const survivors = [w0, w1, w2].filter((w) => w !== victim);
    const publishing = publish(phase2);
    await new Promise((r) => setTimeout(r, 300));
    const orphaned = current(victim);
    victim.child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited(victim.child);
    await waitFor('the two survivors to take over every partition', () => sharedBy(survivors) && survivors.some((w) => w.assignments.at(-1)!.at > killedAt), 60_000, 100);
    const rebalanceMs = Math.max(...survivors.map((w) => w.assignments.at(-1)!.at)) - killedAt;
    expect(orphaned.every((p) => survivors.some((w) => current(w).includes(p)))).toBe(true);
    // Exactly one survivor took the pusher role over.
    await waitFor('a survivor to take the pusher role over', () => survivors.some((w) => w.pusherSince.some((t) => t > killedAt)), 10_000, 100);
    expect(survivors.filter((w) => w.pusherSince.some((t) => t > killedAt))).toHaveLength(1);
    await publishing;

    // 4. The group catches up; then Stripe settles at floor(local total) per stream.
    await waitForGroupCaughtUp(kafka, GROUP, TOPIC, 120_000);
    const caughtUpMs = Date.now() - started;
    const expected = new Map<string, bigint>();
    for (const [g, t] of truth) {
      const [tenant, customer, meter] = g.split('/') as [string, string, string];
      expected.set(`cus_t${tenant.slice('tenant-'.length)}c${customer.slice('cust-'.length)}/${meter}`, floorUnits(t.units));
    }
    const settled = await waitFor(
      'Stripe to hold floor(local total) for every customer and meter',
      () => [...expected].every(([k, v]) => fake.totalFor(k.split('/')[0]!, k.split('/')[1]!) >= v),
      60_000,
      200,
    ).then(
      () => true,
      () => false, // the comparison below shows which streams are short
    );
    // A little longer: anything sent twice would show up as a surplus.
    await new Promise((r) => setTimeout(r, 3000));
    for (const w of survivors) w.child.kill('SIGTERM');
    for (const w of survivors) expect(await exited(w.child)).toEqual({ code: 0, signal: null });

    const atStripe = new Map([...expected.keys()].map((k) => [k, fake.totalFor(k.split('/')[0]!, k.split('/')[1]!)]));
    expect(atStripe).toEqual(expected);
    expect(settled).toBe(true);
    expect(fake.identifierConflicts()).toEqual([]);
    const accepted = fake.identifierLog().filter((a) => a.outcome === 'accepted');
    expect(accepted.length).toBe(new Set(accepted.map((a) => a.identifier)).size);

    // 5. ClickHouse: every message in exactly one place, exact ledger totals…
    const stats = await runCli(['stats', '--json', '--by-customer'], { env: { ...env, LOG_LEVEL: 'warn' } });
    expect(stats.code).toBe(0);
    const report = JSON.parse(stats.stdout) as {
      accounting: { accepted: number; duplicates: number; conflicts: number; rejected: number; classifiedTwice: number };
      totals: { tenant: string; customer: string; meter: string; events: number; value: string }[];
    };
    const { accepted: acc, duplicates, conflicts, rejected, classifiedTwice } = report.accounting;
    expect(acc + duplicates + conflicts + rejected).toBe(produced);
    expect({ acc, duplicates, conflicts, classifiedTwice }).toEqual({ acc: firsts.length, duplicates: copies.length, conflicts: 0, classifiedTwice: 0 });
    expect(rejected).toBe(produced - generated.length);
    const ledger = new Map(report.totals.map((t) => [`${t.tenant}/${t.customer}/${t.meter}`, t.events]));
    expect(ledger).toEqual(new Map([...truth].map(([g, t]) => [g, t.events])));

    // …and counters (read FINAL) that add up to the same exact totals.
    const client = createClickHouse(loadConfig({ ...env, LOG_LEVEL: 'silent' }));
    try {
      const rs = await client.query({
        query: `SELECT tenant, customer, meter, toString(sum(value)) AS total, toString(sum(events)) AS events FROM meterline.usage_counters FINAL GROUP BY tenant, customer, meter`,
        format: 'JSONEachRow',
      });
      const counters = new Map((await rs.json<{ tenant: string; customer: string; meter: string; total: string; events: string }>()).map((r) => [`${r.tenant}/${r.customer}/${r.meter}`, { events: Number(r.events), total: r.total }]));
      expect(counters).toEqual(new Map([...truth].map(([g, t]) => [g, { events: t.events, total: formatDecimal(t.units) }])));
    } finally {
      await client.close();
    }

    process.stdout.write(
      `scale-out: ${produced} messages (${firsts.length} unique, ${copies.length} copies, ${produced - generated.length} bad), ${PARTITIONS} partitions, 3 workers joined in ${joinedMs} ms, ` +
        `1 SIGKILL (the pusher, ${victim.name}), rebalance ${rebalanceMs} ms, caught up at ${caughtUpMs} ms, ${accepted.length} meter events accepted by Stripe for ${expected.size} streams\n`,
    );
  }, 240_000);

  it("pushes a worker's own units within seconds: the pusher takes its own changes in process and reads only other workers' from the change record", async () => {
    // A group of one on the same topic: it re-reads the backlog (after the test above, all in the
    // ledger already; a first event of another stream at least) and becomes the pusher, whose
    // term begins with a full scan.
    const group = 'scale-out-lone';
    const encoder = createSingleObjectEncoder();
    const send = async (event: UsageEvent) => producer.send({ topic: TOPIC, acks: -1, messages: [{ key: partitionKey(event), value: await encoder.encode(event) }] });
    const usage = (customer: string, meter: string, id: string, value: string): UsageEvent => ({ tenant: 'tenant-0', customer, meter, id, value, timestamp: Date.now(), properties: {}, source: null });
    await send(usage('cust-1', 'api_calls', 'lone-0', '1'));
    // Mappings imported within a cycle's 30 s overlap would name every stream as changed.
    await new Promise((r) => setTimeout(r, Math.max(0, importedAt + 35_000 - Date.now())));
    const lone = startWorker('lone', { ...env, KAFKA_GROUP_ID: group });
    await waitForGroupCaughtUp(kafka, group, TOPIC, 120_000);
    await waitFor("the lone pusher's first full scan", () => lone.fullCycles.length > 0, 60_000, 100);
    // New usage now reaches the pusher only as a change: its own, so never from the change record
    // (the next full scan is 5 minutes away).
    const before = fake.totalFor('cus_t0c0', 'tokens');
    await send(usage('cust-0', 'tokens', 'lone-1', '7'));
    await waitFor('the new usage to reach Stripe', () => fake.totalFor('cus_t0c0', 'tokens') === before + 7n, 20_000, 100);
    lone.child.kill('SIGTERM');
    expect(await exited(lone.child)).toEqual({ code: 0, signal: null });
  }, 180_000);
});
