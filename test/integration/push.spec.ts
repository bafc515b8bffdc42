import { importCustomers } from '../../src/adapters/clickhouse/customer-store';
import type { NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createPushStore } from '../../src/adapters/clickhouse/push-store';
import { createStreamStore, type StreamStore } from '../../src/adapters/clickhouse/stream-store';
import type { StreamScope } from '../../src/adapters/clickhouse/stream-scope';
import { createShadowSink, type BillingSink } from '../../src/adapters/stripe/billing-sink';
import { createMeterEventStreamSink } from '../../src/adapters/stripe/meter-event-stream-sink';
import { createMeterEventsSink } from '../../src/adapters/stripe/meter-events-sink';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import { splitPoint } from '../../src/domain/stream-parts';
import type { UsageEvent } from '../../src/domain/usage-event';
import { storeAsIngest } from '../helpers/ledger';
import { createChangeFeed } from '../../src/pipeline/change-feed';
import { errorReportRoute } from '../../src/pipeline/error-reports';
import type { Pusher, PusherDeps } from '../../src/pipeline/pusher';
import { reconcile } from '../../src/pipeline/reconcile';
import { startHttpServer } from '../../src/runtime/http-server';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { cycleAndDrain, testPusher } from '../helpers/pusher';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = Date.now();
const thisHour = Math.floor(now / HOUR) * HOUR;

const parsed = parseMeterCatalog({
  meters: [
    { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } },
    { name: 'calls', aggregation: 'count', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'calls' } },
    { name: 'seats', aggregation: 'unique_count', unique_property: 'user', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'seats' } },
    { name: 'peak', aggregation: 'max', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'peak' } },
    { name: 'latest', aggregation: 'last', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'latest' } },
  ],
});
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;

describe('push: delta pusher to Stripe', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  let seq = 0;

  /** Stores events in the ledger and records their streams as changed, as ingest does (as worker `ingestedBy`). */
  async function store(events: Omit<UsageEvent, 'id' | 'properties' | 'source'>[] & object[], props: Record<string, string>[] = [], stamp: () => number = Date.now, ingestedBy?: string) {
    const batch: NewEvent[] = events.map((e, i) => {
      seq += 1;
      const event: UsageEvent = { ...(e as UsageEvent), id: `p${seq}`, properties: props[i] ?? {}, source: null };
      const meter = meters.get(event.meter)!;
      return { candidate: candidateOf({ topic: 'push', partition: 0, offset: String(seq) }, event, meter), lateness: decideLateness(event.timestamp, meter, null) };
    });
    return storeAsIngest(ch.client, ch.database, batch, stamp(), ingestedBy);
  }

  const pusherWith = (sink: BillingSink, extra: Partial<PusherDeps> = {}): Pusher => testPusher(ch, sink, meters, extra);
  const ev = (tenant: string, customer: string, meter: string, value: string, timestamp = thisHour + 60_000) => ({ tenant, customer, meter, value, timestamp });

  beforeAll(async () => {
    ch = await testClickHouse('push');
    // A live-mode key: these pushers send at 1000/s, Stripe's live limit. With a test key the
    // fake enforces the 25/s test-mode limit, and a burst of 429s could leave a push for a later
    // cycle than the test runs (the key-mode limits are tested in stripe-billing.spec.ts).
    fake = await startFakeStripe({ apiKey: 'sk_live_fake_meterline' });
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    fake.addMeter({ event_name: 'calls', formula: 'sum' });
    for (const name of ['seats', 'peak', 'latest']) fake.addMeter({ event_name: name, formula: 'last' });
    await importCustomers(ch.client, ch.database, ['frac', 'late', 'abs', 'faults', 'v2', 'hook', 'old', 'scope'].map((t) => ({ tenant: t, customer: 'c', stripeCustomerId: `cus_${t}` })), Date.now());
  });

  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  it('carries fractional totals: Stripe always holds floor(local total)', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store([ev('frac', 'c', 'tokens', '0.4'), ev('frac', 'c', 'tokens', '0.4')]);
    await cycleAndDrain(pusher);
    expect(fake.totalFor('cus_frac', 'tokens')).toBe(0n);
    await store([ev('frac', 'c', 'tokens', '0.4')]);
    await cycleAndDrain(pusher);
    expect(fake.totalFor('cus_frac', 'tokens')).toBe(1n);
    await store([ev('frac', 'c', 'tokens', '2.9'), ev('frac', 'c', 'calls', '1'), ev('frac', 'c', 'calls', '1')]);
    await cycleAndDrain(pusher);
    expect(fake.totalFor('cus_frac', 'tokens')).toBe(4n); // local 4.1
    expect(fake.totalFor('cus_frac', 'calls')).toBe(2n);
    // Nothing new: nothing sent.
    const before = fake.acceptedEvents().length;
    await cycleAndDrain(pusher);
    expect(fake.acceptedEvents().length).toBe(before);
  });

  it('after its first cycle, plans only streams whose counters or mapping changed, re-plans a stream it had to skip, and still scans everything now and then', async () => {
    // The real stores, observed: which streams each cycle asked totals for.
    const real = createStreamStore(ch.client, ch.database);
    const asked: StreamScope[] = [];
    const streams: StreamStore = { ...real, deltaStreams: (m, scope) => (asked.push(scope), real.deltaStreams(m, scope)) };
    // One clock for the pusher and for the counter stamps it looks for.
    let clockNow = Date.now();
    const clock = () => clockNow;
    const sink = createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }));
    let gate: Promise<void> | null = null;
    // Holds deliveries for customer b while a gate is set (a slow Stripe call).
    const gated: BillingSink = { ...sink, send: async (push) => ((push.customer === 'b' && gate ? await gate : undefined), sink.send(push)) };
    const pusher = pusherWith(gated, { streams, clock, fullScanEveryMs: 600_000 });
    const total = (stripeCustomer: string) => fake.totalFor(stripeCustomer, 'tokens');
    // Usage of the previous hour: its pushes are timestamped inside that window, in the past
    // whatever this test does to the pusher's clock (Stripe refuses timestamps in the future).
    const at = thisHour - HOUR + 60_000;
    const streamsAsked = () => asked.pop()?.map((k) => `${k.customer}/${k.meter}`).sort();
    // Past the change cursor's overlap (30 s), with a cycle in between: nothing is "changed" any more.
    const quiet = async () => {
      clockNow += 31_000;
      await cycleAndDrain(pusher);
      clockNow += 31_000;
      asked.length = 0;
    };
    await importCustomers(ch.client, ch.database, [{ tenant: 'scope', customer: 'b', stripeCustomerId: 'cus_scope_b' }], clockNow);
    await store([ev('scope', 'c', 'tokens', '5', at), ev('scope', 'b', 'tokens', '7', at), ev('scope', 'u', 'tokens', '3', at)], [], clock);

    // 1. The first cycle reads every stream (no scope); u has no mapping yet.
    expect((await cycleAndDrain(pusher)).awaitingMapping).toBeGreaterThanOrEqual(1);
    expect(asked).toEqual([undefined]);
    expect([total('cus_scope'), total('cus_scope_b')]).toEqual([5n, 7n]);
    // 2. Nothing changed: no totals are read at all.
    await quiet();
    expect(await cycleAndDrain(pusher)).toEqual({ started: 0, awaitingMapping: 0, tooOld: 0, deferred: 0 });
    expect(asked).toEqual([]);
    // 3. One stream changed: only it is read, and pushed.
    await store([ev('scope', 'c', 'tokens', '2', at)], [], clock);
    clockNow += 1_000;
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(streamsAsked()).toEqual(['c/tokens']);
    expect(total('cus_scope')).toBe(7n);
    // 4. A mapping arrives for u: its waiting usage goes out on the next cycle, not at the next full scan.
    await quiet();
    await importCustomers(ch.client, ch.database, [{ tenant: 'scope', customer: 'u', stripeCustomerId: 'cus_scope_u' }], clockNow);
    clockNow += 1_000;
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(streamsAsked()).toEqual(['u/tokens']);
    expect(total('cus_scope_u')).toBe(3n);
    // 5. b changes while its previous push is still being delivered: that cycle skips b, and a
    //    later one plans it again although its counter has not changed since.
    await quiet();
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    await store([ev('scope', 'b', 'tokens', '1', at)], [], clock);
    clockNow += 1_000;
    expect((await pusher.cycle()).started).toBe(1); // b: 7 → 8, held at the gate
    await store([ev('scope', 'b', 'tokens', '1', at)], [], clock);
    clockNow += 1_000;
    expect((await pusher.cycle()).started).toBe(0); // b is in flight: skipped
    gate = null;
    open();
    await pusher.drain();
    expect(total('cus_scope_b')).toBe(8n);
    clockNow += 61_000; // b's counter is no longer "changed" for the cursor
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(streamsAsked()).toEqual(['b/tokens']);
    expect(total('cus_scope_b')).toBe(9n);
    // 6. A counter the change cursor cannot see (stamped an hour ago) is still pushed by the
    //    periodic full scan.
    await quiet();
    await store([ev('scope', 'c', 'tokens', '4', at)], [], () => clockNow - 3_600_000);
    clockNow += 1_000;
    expect((await cycleAndDrain(pusher)).started).toBe(0);
    expect(total('cus_scope')).toBe(7n);
    clockNow += 600_000;
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(asked).toEqual([undefined]); // a full scan
    expect(total('cus_scope')).toBe(11n);
  });

  it("learns its own worker's changes in process, and reads only the other workers' from the change record", async () => {
    const real = createStreamStore(ch.client, ch.database);
    const exceptWriters: (string | undefined)[] = [];
    const feed = createChangeFeed('worker-a');
    // The pusher's clock and the change stamps run two minutes behind (later tests' pushers then
    // do not see these changes); the mappings were imported before, so they are not "changed".
    const clock = () => Date.now() - 120_000;
    await importCustomers(ch.client, ch.database, ['a', 'b'].map((c) => ({ tenant: 'own', customer: c, stripeCustomerId: `cus_own_${c}` })), Date.now() - 300_000);
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), {
      streams: { ...real, changedStreams: (since, exceptWriter) => (exceptWriters.push(exceptWriter), real.changedStreams(since, exceptWriter)) },
      ownChanges: feed.subscribe(),
      clock,
    });
    await cycleAndDrain(pusher); // the term's full scan
    // 1. Stored by this worker (worker-a) and in the change record, not yet published in process:
    //    the pusher does not read it back from the record.
    const changes = await store([ev('own', 'a', 'tokens', '3')], [], clock, 'worker-a');
    expect((await cycleAndDrain(pusher)).started).toBe(0);
    // 2. Published, as the worker does once the unit is durable: pushed.
    feed.publish(changes);
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(fake.totalFor('cus_own_a', 'tokens')).toBe(3n);
    // 3. Another worker's unit: from the change record.
    await store([ev('own', 'b', 'tokens', '4')], [], clock, 'worker-b');
    expect((await cycleAndDrain(pusher)).started).toBe(1);
    expect(fake.totalFor('cus_own_b', 'tokens')).toBe(4n);
    expect(exceptWriters.length).toBeGreaterThanOrEqual(3);
    expect(new Set(exceptWriters)).toEqual(new Set(['worker-a']));
  });

  it('keeps at most maxInFlight pushes in flight; streams due beyond it go out in later cycles, from their newer totals', async () => {
    const real = createStreamStore(ch.client, ch.database);
    let changeReads = 0;
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), {
      streams: { ...real, changedStreams: (since) => ((changeReads += 1), real.changedStreams(since)) },
      maxInFlight: 2,
    });
    const customers = ['k0', 'k1', 'k2', 'k3', 'k4'];
    await importCustomers(ch.client, ch.database, customers.map((c) => ({ tenant: 'cap', customer: c, stripeCustomerId: `cus_cap_${c}` })), Date.now());
    await store(customers.map((c, i) => ev('cap', c, 'tokens', String(i + 1))));
    const started: number[] = [];
    started.push((await cycleAndDrain(pusher)).started);
    // More usage for every stream: the two pushed already need a second push; the three that
    // waited go out once, with both amounts.
    await store(customers.map((c) => ev('cap', c, 'tokens', '10')));
    const readChanges: boolean[] = [];
    for (let i = 0; i < 4; i += 1) {
      const before = changeReads;
      started.push((await cycleAndDrain(pusher)).started);
      readChanges.push(changeReads > before);
    }
    expect(started).toEqual([2, 2, 2, 1, 0]);
    // The cycle after the first has three deferred streams and room for two: it serves them and
    // leaves changes for later (later cycles depend on which streams went first).
    expect(readChanges[0]).toBe(false);
    expect(readChanges).toContain(true);
    expect(customers.map((c) => fake.totalFor(`cus_cap_${c}`, 'tokens'))).toEqual([11n, 12n, 13n, 14n, 15n]);
    expect(fake.acceptedEvents().filter((e) => e.customer.startsWith('cus_cap_'))).toHaveLength(7);
  });

  it('sends an extra delta, timestamped inside its window, for a late event', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store([ev('late', 'c', 'tokens', '10')]);
    await cycleAndDrain(pusher);
    const earlier = thisHour - 3 * HOUR;
    await store([ev('late', 'c', 'tokens', '5', earlier + 10 * 60_000)]);
    await cycleAndDrain(pusher);
    const sent = fake.acceptedEvents({ customer: 'cus_late', eventName: 'tokens' });
    expect(sent.map((e) => String(e.value))).toEqual(['10', '5']);
    const ts = Number(sent[1]!.timestamp) * 1000;
    expect(ts).toBeGreaterThanOrEqual(earlier);
    expect(ts).toBeLessThan(earlier + HOUR);
  });

  it('sends max, last and unique_count meters as absolute values of the billing period', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store(
      [ev('abs', 'c', 'seats', '1'), ev('abs', 'c', 'seats', '1'), ev('abs', 'c', 'peak', '7'), ev('abs', 'c', 'peak', '3'), ev('abs', 'c', 'latest', '4', thisHour + 1000), ev('abs', 'c', 'latest', '9', thisHour + 2000)],
      [{ user: 'u1' }, { user: 'u2' }],
    );
    await cycleAndDrain(pusher);
    const last = (name: string) => fake.acceptedEvents({ customer: 'cus_abs', eventName: name }).map((e) => String(e.value));
    expect(last('seats')).toEqual(['2']);
    expect(last('peak')).toEqual(['7']);
    expect(last('latest')).toEqual(['9']);
    await store([ev('abs', 'c', 'seats', '1'), ev('abs', 'c', 'seats', '1')], [{ user: 'u2' }, { user: 'u3' }]);
    await cycleAndDrain(pusher);
    expect(last('seats')).toEqual(['2', '3']);
    expect(last('peak')).toEqual(['7']); // unchanged: not sent again
  });

  it('computes absolute values per configured billing period (anchor day), the same in SQL as in code', async () => {
    const streams = createStreamStore(ch.client, ch.database);
    const d14 = Date.parse('2026-11-14T12:00:00Z');
    const d15 = Date.parse('2026-11-15T12:00:00Z');
    await store([ev('anchor', 'c', 'peak', '5', d14), ev('anchor', 'c', 'peak', '3', d15)]);
    const byPeriod = (rows: { tenant: string; periodStart: number; value: string }[]) =>
      rows.filter((r) => r.tenant === 'anchor').map((r) => [new Date(r.periodStart).toISOString(), r.value]).sort();
    expect(byPeriod(await streams.absoluteStreams(['peak'], 15))).toEqual([
      ['2026-10-15T00:00:00.000Z', '5'],
      ['2026-11-15T00:00:00.000Z', '3'],
    ]);
    expect(byPeriod(await streams.absoluteStreams(['peak'], 1))).toEqual([['2026-11-01T00:00:00.000Z', '5']]);
  });

  it('holds usage of an unmapped customer as awaiting mapping, and pushes it once mapped', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store([ev('unmapped', 'c', 'tokens', '12.5')]);
    const s = await cycleAndDrain(pusher);
    expect(s.awaitingMapping).toBeGreaterThanOrEqual(1);
    expect(fake.totalFor('cus_unmapped', 'tokens')).toBe(0n);
    const report = await reconcile(ch.client, ch.database, meters, null, { from: thisHour - 10 * HOUR, to: thisHour + 2 * HOUR, epsilon: 0.005 });
    expect(report.awaitingMapping).toContainEqual({ tenant: 'unmapped', customer: 'c', meter: 'tokens', total: '12.5' });
    await importCustomers(ch.client, ch.database, [{ tenant: 'unmapped', customer: 'c', stripeCustomerId: 'cus_unmapped' }], Date.now());
    await cycleAndDrain(pusher);
    expect(fake.totalFor('cus_unmapped', 'tokens')).toBe(12n);
  });

  it('marks usage too old for Stripe failed with the reason, and reconcile lists it', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store([ev('old', 'c', 'tokens', '3', now - 40 * 86_400_000)]);
    const s = await cycleAndDrain(pusher);
    expect(s.tooOld).toBe(1);
    expect(fake.totalFor('cus_old', 'tokens')).toBe(0n);
    const report = await reconcile(ch.client, ch.database, meters, null, { from: now - 50 * 86_400_000, to: now, epsilon: 0.005 });
    expect(report.failed).toContainEqual(expect.objectContaining({ tenant: 'old', meter: 'tokens', value: 3n, lastError: expect.stringMatching(/^timestamp_too_far_in_past/) }));
  });

  it('survives 429s, 500s and timeouts-after-accepting: exact totals, no identifier ever sent with two values', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0, timeout: 500 })));
    // One phase per fault, each on a new delta, so every fault is certainly met.
    const phases: [string, () => ReturnType<FakeStripe['inject']>[]][] = [
      ['3.5', () => [fake.inject({ kind: 'status', status: 429, customer: 'cus_faults', times: 2 }), fake.inject({ kind: 'status', status: 500, customer: 'cus_faults', times: 2 })]],
      ['4.25', () => [fake.inject({ kind: 'timeout-after-accept', mode: 'reset', customer: 'cus_faults' })]],
      ['10', () => [fake.inject({ kind: 'status', status: 500, stage: 'after-accept', customer: 'cus_faults' })]],
      ['0.75', () => [fake.inject({ kind: 'timeout-after-accept', mode: 'truncate', customer: 'cus_faults' })]],
    ];
    for (const [value, inject] of phases) {
      const handles = inject();
      await store([ev('faults', 'c', 'tokens', value)]);
      for (let i = 0; i < 10 && handles.some((h) => h.remaining() > 0); i += 1) await cycleAndDrain(pusher);
      await cycleAndDrain(pusher);
      expect(handles.map((h) => h.remaining())).toEqual(handles.map(() => 0));
    }
    expect(fake.totalFor('cus_faults', 'tokens')).toBe(18n); // floor(3.5 + 4.25 + 10 + 0.75)
    expect(fake.identifierConflicts()).toEqual([]);
    // Resends after accepted-but-unanswered calls were answered "already exists" (delivered), never accepted twice.
    const attempts = fake.identifierLog().filter((a) => a.customer === 'cus_faults');
    expect(attempts.filter((a) => a.outcome === 'accepted').length).toBe(new Set(attempts.map((a) => a.identifier)).size);
    expect(attempts.filter((a) => a.outcome === 'duplicate').length).toBeGreaterThanOrEqual(2);
    const pending = await createPushStore(ch.client, ch.database).list({ status: 'pending' });
    expect(pending.filter((p) => p.tenant === 'faults')).toEqual([]);
  });

  it('v2 stream: batches of at most 100, and a session that expired mid-stream is replaced without loss', async () => {
    // The sink believes its session is fresh (its clock lags), while Stripe expires it.
    let skew = 0;
    const sink = createMeterEventStreamSink(fake.client({ maxNetworkRetries: 0 }), { clock: () => Date.now() - skew });
    const pusher = pusherWith(sink);
    await store(Array.from({ length: 150 }, (_, i) => ev('v2', `c${i}`, 'tokens', '2')));
    await importCustomers(ch.client, ch.database, Array.from({ length: 150 }, (_, i) => ({ tenant: 'v2', customer: `c${i}`, stripeCustomerId: `cus_v2_${i}` })), Date.now());
    await cycleAndDrain(pusher);
    const sessionsBefore = fake.state.sessions.size;
    fake.clock.advance(16 * 60_000);
    skew = 16 * 60_000;
    await store(Array.from({ length: 150 }, (_, i) => ev('v2', `c${i}`, 'tokens', '1')));
    await cycleAndDrain(pusher);
    fake.clock.advance(-16 * 60_000);
    expect(fake.state.sessions.size).toBeGreaterThan(sessionsBefore);
    // Stripe really answered "session expired" at least once, and the batch was resent.
    expect(fake.calls().filter((c) => c.path === '/v2/billing/meter_event_stream' && c.status === 401).length).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 150; i += 1) expect(fake.totalFor(`cus_v2_${i}`, 'tokens')).toBe(3n);
    const streamCalls = fake.calls().filter((c) => c.path === '/v2/billing/meter_event_stream' && c.status === 200);
    expect(streamCalls.length).toBeGreaterThanOrEqual(4); // 300 events in batches of at most 100
    await sink.close();
  });

  it('shadow mode writes the push ledger and sends nothing', async () => {
    const callsBefore = fake.calls().length;
    const pusher = pusherWith(createShadowSink());
    await store([ev('shadowed', 'c', 'tokens', '5')]);
    await importCustomers(ch.client, ch.database, [{ tenant: 'shadowed', customer: 'c', stripeCustomerId: 'cus_shadowed' }], Date.now());
    await cycleAndDrain(pusher);
    expect(fake.calls().length).toBe(callsBefore);
    const rowsShadow = await rows<{ status: string; value: string }>(ch.client, `SELECT status, toString(value) AS value FROM ${ch.database}.stripe_pushes FINAL WHERE tenant = 'shadowed'`);
    expect(rowsShadow).toEqual([{ status: 'shadow', value: '5' }]);
  });

  it('marks pushes named by a signed error-report webhook failed, and refuses a tampered one', async () => {
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })));
    await store([ev('hook', 'c', 'tokens', '6')]);
    await cycleAndDrain(pusher);
    const pushes = createPushStore(ch.client, ch.database);
    const [pushed] = (await pushes.list({ tenant: 'hook' })).filter((p) => p.status === 'reported');
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      routes: { '/webhooks/stripe': errorReportRoute({ stripe: fake.client(), webhookSecret: fake.webhookSecret, pushes, clock: Date.now, logger: silentLogger() }) },
    });
    try {
      const meterId = fake.state.meters.values().next().value!.id;
      const delivery = fake.webhooks.errorReportTriggered({ meterId, errorTypes: [{ code: 'meter_event_customer_not_found', samples: [{ identifier: pushed!.identifier }] }] });
      // Same signature, one byte of body changed.
      const tampered = await fake.webhooks.deliver(`${server.url}/webhooks/stripe`, { ...delivery, payload: delivery.payload.replace('"id":', '"id" :') });
      expect(tampered.status).toBe(400);
      expect((await pushes.list({ identifiers: [pushed!.identifier] }))[0]!.status).toBe('reported');
      const ok = await fake.webhooks.deliver(`${server.url}/webhooks/stripe`, delivery);
      expect(ok.status).toBe(200);
      const after = (await pushes.list({ identifiers: [pushed!.identifier] }))[0]!;
      expect(after).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/meter_event_customer_not_found/) });
    } finally {
      await server.close();
    }
  });
});

describe('push: a backfill across a periodic full scan', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  let seq = 0;
  const store = (events: { customer: string; value: string; timestamp: number }[], stamp: number) =>
    storeAsIngest(
      ch.client,
      ch.database,
      events.map((e) => {
        seq += 1;
        const event: UsageEvent = { id: `g${seq}`, tenant: 'gap', meter: 'tokens', properties: {}, source: null, ...e };
        const meter = meters.get('tokens')!;
        return { candidate: candidateOf({ topic: 'gap', partition: 0, offset: String(seq) }, event, meter), lateness: decideLateness(event.timestamp, meter, null) };
      }),
      stamp,
    );
  beforeAll(async () => {
    ch = await testClickHouse('pushgap');
    fake = await startFakeStripe({ apiKey: 'sk_live_fake_meterline' });
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
  });
  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  it('pushes a backfill into a window older than the kept span, recorded while a slow push kept the change cursor still for longer than its overlap, across a periodic full scan', async () => {
    // One clock for the pusher and the change stamps. The mappings were imported before: they
    // are not "changed".
    const t = Date.now();
    let clockNow = t;
    const clock = () => clockNow;
    const at = async <T,>(ms: number, step: () => Promise<T>): Promise<T> => {
      clockNow = t + ms;
      return step();
    };
    await importCustomers(ch.client, ch.database, ['c', 'hold'].map((c) => ({ tenant: 'gap', customer: c, stripeCustomerId: `cus_gap_${c}` })), t - 300_000);
    const sink = createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }));
    let gate: Promise<void> | null = null;
    const gated: BillingSink = { ...sink, send: async (push) => ((push.customer === 'hold' && gate ? await gate : undefined), sink.send(push)) };
    const real = createStreamStore(ch.client, ch.database);
    const fullScansAt: number[] = [];
    const streams: StreamStore = { ...real, deltaStreams: (m, scope) => (scope === undefined && fullScansAt.push(clockNow - t), real.deltaStreams(m, scope)) };
    const pusher = testPusher(ch, gated, meters, { streams, clock, maxInFlight: 1, fullScanEveryMs: 120_000 });
    const totals = () => [fake.totalFor('cus_gap_c', 'tokens'), fake.totalFor('cus_gap_hold', 'tokens')];
    // Two days back: before the span the stream store reads afresh (it keeps older windows in memory).
    const backfillAt = splitPoint(Date.now()) - DAY + 60_000;
    expect(backfillAt).toBeLessThan(real.keptBefore());

    await at(0, () => store([{ customer: 'c', value: '5', timestamp: backfillAt }, { customer: 'hold', value: '1', timestamp: t - 60_000 }], clockNow));
    // The term's full scan (it keeps c's old window in memory), then scoped cycles, one push in
    // flight at most, until the change cursor is past both changes.
    for (const ms of [1_000, 2_000, 40_000, 41_000, 42_000]) await at(ms, () => cycleAndDrain(pusher));
    expect(totals()).toEqual([5n, 1n]);
    // A slow push fills the in-flight budget: the cycles after it read no changes, so the cursor
    // stays at 43 s.
    let open!: () => void;
    gate = new Promise((r) => (open = r));
    await at(42_500, () => store([{ customer: 'hold', value: '1', timestamp: t - 60_000 }], clockNow));
    expect((await at(43_000, () => pusher.cycle())).started).toBe(1);
    // Usage backfilled into the old window; then, more than the cursor's overlap (30 s) later,
    // the periodic full scan, which reads recent windows only.
    await at(45_000, () => store([{ customer: 'c', value: '4', timestamp: backfillAt }], clockNow));
    for (let ms = 50_000; ms <= 150_000; ms += 5_000) await at(ms, () => pusher.cycle());
    expect(fullScansAt.filter((ms) => ms > 45_000 + 30_000)).toHaveLength(1);
    // The slow push ends; the next cycles push the backfill.
    gate = null;
    open();
    await pusher.drain();
    for (const ms of [151_000, 152_000, 153_000]) await at(ms, () => cycleAndDrain(pusher));
    expect(totals()).toEqual([9n, 2n]);
  });
});

describe('reconcile against Stripe', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  beforeAll(async () => {
    ch = await testClickHouse('reconcile');
    // Summaries without processing lag: this test compares right after pushing (the lag has its own tests).
    fake = await startFakeStripe({ summaryLagMs: 0 });
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    await importCustomers(ch.client, ch.database, [{ tenant: 'r', customer: 'c', stripeCustomerId: 'cus_r' }], Date.now());
  });
  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  it('reports drift beyond epsilon while Stripe lags the local total, and none once pushed', async () => {
    const meter = meters.get('tokens')!;
    const put = async (id: string, value: string) => {
      const event: UsageEvent = { id, tenant: 'r', customer: 'c', meter: 'tokens', value, timestamp: thisHour + 1000, properties: {}, source: null };
      await storeAsIngest(ch.client, ch.database, [{ candidate: candidateOf({ topic: 'r', partition: 0, offset: id.slice(1) }, event, meter), lateness: decideLateness(event.timestamp, meter, null) }]);
    };
    const pusher = testPusher(ch, createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), meters, { callsPerSecond: 100 });
    const range = { from: thisHour - HOUR, to: thisHour + HOUR, epsilon: 0.005 };
    await put('r1', '100.6');
    await pusher.cycle();
    await pusher.drain();
    let report = await reconcile(ch.client, ch.database, meters, fake.client(), range);
    expect(report.drift).toEqual([expect.objectContaining({ local: '100.6', reported: '100', stripe: '100', drift: '0', ok: true })]);
    expect(report.ok).toBe(true);

    await put('r2', '50'); // not pushed yet: Stripe is behind by 50 units (33 %)
    const metrics = createMetrics({ defaultMetrics: false });
    report = await reconcile(ch.client, ch.database, meters, fake.client(), { ...range, metrics });
    // Exported for Prometheus: the worst relative drift per meter.
    expect((await metrics.reconcileDrift.get()).values).toContainEqual(expect.objectContaining({ labels: { meter: 'tokens' }, value: 50 / 150 }));
    expect(report.drift).toEqual([expect.objectContaining({ local: '150.6', stripe: '100', drift: '50', ok: false })]);
    expect(report.ok).toBe(false);

    await pusher.cycle();
    await pusher.drain();
    report = await reconcile(ch.client, ch.database, meters, fake.client(), range);
    expect(report.ok).toBe(true);
  });
});

describe('pending pushes after a restart', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  beforeAll(async () => {
    ch = await testClickHouse('pending');
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
  });
  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  it('resends a pending push with its identifier, but holds one pending for more than 24 h instead of resending it blindly', async () => {
    const pushes = createPushStore(ch.client, ch.database);
    const base = { tenant: 't', meter: 'tokens', eventName: 'tokens', windowStart: thisHour, mode: 'delta' as const, pushedFrom: 0n, timestamp: Math.floor((thisHour + 1000) / 1000) };
    const fresh = { ...base, customer: 'fresh', stripeCustomerId: 'cus_fresh', identifier: 'ml_fresh_0001', value: 7n, pushedTo: 7n };
    const stale = { ...base, customer: 'stale', stripeCustomerId: 'cus_stale', identifier: 'ml_stale_0001', value: 9n, pushedTo: 9n };
    await pushes.record(fresh, 'pending', { attempts: 1, createdAt: now - 3_600_000, now: now - 3_600_000 });
    await pushes.record(stale, 'pending', { attempts: 1, createdAt: now - 25 * 3_600_000, now: now - 25 * 3_600_000 });
    const pusher = testPusher(ch, createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), meters, { callsPerSecond: 100, pushes });
    expect(await pusher.resendPending()).toEqual({ resent: 1, held: 1 });
    expect(fake.acceptedEvents().map((e) => [e.identifier, String(e.value)])).toEqual([['ml_fresh_0001', '7']]);
    const byId = new Map((await pushes.list()).map((p) => [p.identifier, p]));
    expect(byId.get('ml_fresh_0001')!.status).toBe('reported');
    expect(byId.get('ml_stale_0001')).toMatchObject({ status: 'held', lastError: expect.stringMatching(/more than 24 h/) });
    const report = await reconcile(ch.client, ch.database, meters, null, { from: thisHour - HOUR, to: thisHour + HOUR, epsilon: 0.005 });
    expect(report.held).toEqual([expect.objectContaining({ identifier: 'ml_stale_0001' })]);
    expect(report.ok).toBe(false);
  });
});
