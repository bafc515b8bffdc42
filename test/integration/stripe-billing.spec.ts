/**
 * Billing correctness against the stricter fake Stripe (issue 17): meter configuration and
 * payload keys, stuck pushes, sampled error reports, the v2 stream's 400s, and reconcile.
 */
import { importCustomers } from '../../src/adapters/clickhouse/customer-store';
import type { NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createPushStore } from '../../src/adapters/clickhouse/push-store';
import type { BillingSink } from '../../src/adapters/stripe/billing-sink';
import { createMeterEventStreamSink } from '../../src/adapters/stripe/meter-event-stream-sink';
import { createMeterEventsSink } from '../../src/adapters/stripe/meter-events-sink';
import { listStripeMeters } from '../../src/adapters/stripe/meters';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog, type MeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { storeAsIngest } from '../helpers/ledger';
import { errorReportRoute, type UnexplainedFailures } from '../../src/pipeline/error-reports';
import type { Pusher, PusherDeps } from '../../src/pipeline/pusher';
import { reconcile } from '../../src/pipeline/reconcile';
import { createReconcileRunner } from '../../src/pipeline/reconcile-runner';
import { startMeterGate } from '../../src/pipeline/stripe-meter-gate';
import { startHttpServer } from '../../src/runtime/http-server';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { createRateLimiter } from '../../src/runtime/rate-limiter';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { cycleAndDrain, testPusher } from '../helpers/pusher';

const HOUR = 3_600_000;
const thisHour = Math.floor(Date.now() / HOUR) * HOUR;

const parsed = parseMeterCatalog({
  meters: [
    { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } },
    { name: 'credits', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'credits' } },
  ],
});
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;

let ch: TestClickHouse;
let fake: FakeStripe;
let seq = 0;

/** Stores events in the ledger and records their streams as changed, as ingest does. */
async function store(events: { tenant: string; customer: string; meter: string; value: string; timestamp?: number }[]) {
  const batch: NewEvent[] = events.map((e) => {
    seq += 1;
    const event: UsageEvent = { timestamp: thisHour + 60_000, ...e, id: `sb${seq}`, properties: {}, source: null };
    const meter = meters.get(event.meter)!;
    return { candidate: candidateOf({ topic: 'sb', partition: 0, offset: String(seq) }, event, meter), lateness: decideLateness(event.timestamp, meter, null) };
  });
  await storeAsIngest(ch.client, ch.database, batch);
}

const pusherWith = (sink: BillingSink, extra: Partial<PusherDeps> = {}, catalog: MeterCatalog = meters): Pusher => testPusher(ch, sink, catalog, { callsPerSecond: 20, ...extra });
const map = (tenant: string, customer = 'c') => importCustomers(ch.client, ch.database, [{ tenant, customer, stripeCustomerId: `cus_${tenant}_${customer}` }], Date.now());

beforeAll(async () => {
  ch = await testClickHouse('stripe_billing');
  fake = await startFakeStripe();
  fake.addMeter({ event_name: 'tokens', formula: 'sum' });
  // A meter whose payload keys are not Stripe's defaults.
  fake.addMeter({ event_name: 'credits', formula: 'sum', customerKey: 'account', valueKey: 'qty' });
});
afterAll(async () => {
  await fake?.close();
  await ch?.close();
});
// A test that fails half-way must not leave the fake Stripe set up for the next one: "known
// customers" left set makes every later push an asynchronous error (one failure became four).
// Nor spend its rate budget: the fake holds Stripe's 25 calls/s, and a test that reconciled six
// customers left the next test's resend a 429 (an extra "rate_limited" attempt in its log).
afterEach(() => {
  fake.settings.knownCustomers = null;
  fake.clearFaults();
  fake.resetRateWindow();
});

describe('Stripe meter configuration', () => {
  it("sends each event under its Stripe meter's own payload keys (customer_mapping / value_settings), read at start-up", async () => {
    const stripe = fake.client({ maxNetworkRetries: 0 });
    const gate = await startMeterGate({ catalog: meters, listMeters: () => listStripeMeters(stripe), logger: silentLogger() });
    expect(gate.problems()).toEqual([]);
    const pusher = pusherWith(createMeterEventsSink(stripe, undefined, gate.payloadKeys), {}, gate.billable());
    await map('keys');
    await store([{ tenant: 'keys', customer: 'c', meter: 'credits', value: '12' }, { tenant: 'keys', customer: 'c', meter: 'tokens', value: '3' }]);
    await cycleAndDrain(pusher);
    expect(fake.totalFor('cus_keys_c', 'credits')).toBe(12n);
    expect(fake.totalFor('cus_keys_c', 'tokens')).toBe(3n);
    expect(fake.acceptedEvents({ customer: 'cus_keys_c', eventName: 'credits' })[0]!.payload).toEqual({ account: 'cus_keys_c', qty: '12' });
    gate.stop();
  });
});

describe('stuck pushes', () => {
  it('keeps resending a push left pending after its retries (same identifier, with backoff) and exports how many are pending and the oldest age', async () => {
    let clockNow = Date.now();
    const metrics = createMetrics({ defaultMetrics: false });
    const gauge = async (g: typeof metrics.pendingPushes) => (await g.get()).values[0]?.value ?? 0;
    const pusher = pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), { maxAttempts: 2, clock: () => clockNow, metrics });
    await map('stuck');
    // Usage of the previous hour: its timestamp stays in the past whatever the pusher's clock does.
    const at = thisHour - HOUR + 60_000;
    await store([{ tenant: 'stuck', customer: 'c', meter: 'tokens', value: '9', timestamp: at }]);
    const outage = fake.inject({ kind: 'status', status: 503, customer: 'cus_stuck_c', times: 5 });
    await cycleAndDrain(pusher); // 2 attempts, both 503: pending
    expect(fake.totalFor('cus_stuck_c', 'tokens')).toBe(0n);
    expect(await gauge(metrics.pendingPushes)).toBe(1);
    clockNow += 5_000;
    await cycleAndDrain(pusher); // backoff not over yet: nothing sent
    expect(outage.remaining()).toBe(3);
    expect(await gauge(metrics.oldestPendingAge)).toBeGreaterThanOrEqual(5);
    // Usage keeps arriving for the stream meanwhile.
    await store([{ tenant: 'stuck', customer: 'c', meter: 'tokens', value: '1', timestamp: at }]);
    for (let i = 0; i < 6 && fake.totalFor('cus_stuck_c', 'tokens') < 10n; i += 1) {
      clockNow += 60_000;
      await cycleAndDrain(pusher);
    }
    expect(outage.remaining()).toBe(0);
    expect(fake.totalFor('cus_stuck_c', 'tokens')).toBe(10n);
    // Every resend carried the first push's identifier; nothing was ever sent under two values.
    const sent = fake.identifierLog().filter((a) => a.customer === 'cus_stuck_c');
    expect(new Set(sent.filter((a) => a.value === '9').map((a) => a.identifier)).size).toBe(1);
    expect(fake.identifierConflicts()).toEqual([]);
    expect(await gauge(metrics.pendingPushes)).toBe(0);
    expect(await gauge(metrics.oldestPendingAge)).toBe(0);
    const pending = await createPushStore(ch.client, ch.database).list({ status: 'pending', tenant: 'stuck' });
    expect(pending).toEqual([]);
  });
});

describe('error reports name samples, not all failures', () => {
  let server: { url: string; close(): Promise<void> };
  const unexplained: UnexplainedFailures[] = [];
  const metrics = createMetrics({ defaultMetrics: false });
  beforeAll(async () => {
    const pushes = createPushStore(ch.client, ch.database);
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger: silentLogger(),
      routes: {
        '/webhooks/stripe': errorReportRoute({ stripe: fake.client(), webhookSecret: fake.webhookSecret, pushes, clock: Date.now, logger: silentLogger(), metrics, onUnexplained: (u) => unexplained.push(u) }),
      },
    });
  });
  afterAll(async () => {
    await server?.close();
  });
  const statuses = async (tenant: string) => new Map((await createPushStore(ch.client, ch.database).list({ tenant })).map((p) => [p.customer, p.status]));

  it.each(['event_identifier', 'idempotency_key'] as const)(
    'marks the sampled pushes failed (Stripe naming the request by its %s), counts the unsampled failures and hands their window to reconcile',
    async (sampleRequest) => {
      const tenant = `rep_${sampleRequest}`;
      const customers = ['k', 'u1', 'u2', 'u3', 'u4', 'u5'];
      await importCustomers(ch.client, ch.database, customers.map((c) => ({ tenant, customer: c, stripeCustomerId: `cus_${tenant}_${c}` })), Date.now());
      // Only k exists in Stripe: the others are accepted now and reported later.
      fake.addCustomers(`cus_${tenant}_k`);
      const since = fake.clock.now();
      await store(customers.map((c) => ({ tenant, customer: c, meter: 'tokens', value: '4' })));
      await cycleAndDrain(pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }))));
      expect([...(await statuses(tenant)).values()].every((s) => s === 'reported')).toBe(true);
      const [delivery] = fake.webhooks.fromAsyncErrors({ maxSamples: 3, sampleRequest, since });
      const before = unexplained.length;
      const answer = await fake.webhooks.deliver(`${server.url}/webhooks/stripe`, delivery!);
      expect(answer.status).toBe(200);
      const after = await statuses(tenant);
      expect([...after.values()].filter((s) => s === 'failed')).toHaveLength(3);
      expect(after.get('k')).toBe('reported');
      // Five failures, three sampled: two unexplained, exported and handed on with Stripe's window.
      expect(unexplained.slice(before)).toEqual([{ count: 2, validationStart: expect.any(Number), validationEnd: expect.any(Number) }]);
      const w = unexplained[unexplained.length - 1]!;
      expect(w.validationStart).toBeLessThanOrEqual(Date.now());
      expect(w.validationEnd).toBeGreaterThanOrEqual(Date.now() - 60_000);
      // The reconcile of the report's window finds the two failures no sample named.
      fake.settings.summaryLagMs = 0;
      const runner = createReconcileRunner({ ch: ch.client, database: ch.database, meters, stripe: fake.client({ maxNetworkRetries: 0 }), pacing: {}, logger: silentLogger() });
      const report = await runner.afterErrorReport(w);
      const short = report.drift.filter((d) => d.tenant === tenant && !d.ok);
      const failed = [...after].filter(([, s]) => s === 'failed').map(([c]) => c);
      expect(short.map((d) => d.customer).sort()).toEqual(customers.filter((c) => c !== 'k' && !failed.includes(c)).sort());
      expect(short.map((d) => d.drift)).toEqual(['4', '4']);
      fake.settings.summaryLagMs = 1_000;
      fake.settings.knownCustomers = null;
    },
  );

  it('a push marked failed by a report stays failed when a later resend is answered "already exists"', async () => {
    const tenant = 'sticky';
    await map(tenant);
    fake.addCustomers('cus_someone_else');
    let gate: Promise<void> | null = null;
    let open!: () => void;
    let sends = 0;
    const sink = createMeterEventsSink(fake.client({ maxNetworkRetries: 0, timeout: 500 }));
    // The second attempt waits at a gate: the report arrives between the two.
    const gated: BillingSink = { ...sink, send: async (push) => ((sends += 1), sends === 2 && gate ? await gate : undefined, sink.send(push)) };
    gate = new Promise((r) => (open = r));
    // Stripe accepts the event, the answer is lost (a truncated body: stripe-node does not retry it).
    fake.inject({ kind: 'timeout-after-accept', mode: 'truncate', customer: `cus_${tenant}_c` });
    const since = fake.clock.now();
    await store([{ tenant, customer: 'c', meter: 'tokens', value: '5' }]);
    const pusher = pusherWith(gated);
    await pusher.cycle();
    for (let i = 0; i < 100 && sends < 2; i += 1) await new Promise((r) => setTimeout(r, 10));
    const [delivery] = fake.webhooks.fromAsyncErrors({ since });
    expect((await fake.webhooks.deliver(`${server.url}/webhooks/stripe`, delivery!)).status).toBe(200);
    expect((await statuses(tenant)).get('c')).toBe('failed');
    open();
    await pusher.drain();
    expect(fake.identifierLog().filter((a) => a.customer === `cus_${tenant}_c`).map((a) => a.outcome)).toEqual(['dropped_async', 'duplicate']);
    expect((await statuses(tenant)).get('c')).toBe('failed');
    fake.settings.knownCustomers = null;
  });

  it('applies a report that arrives while Stripe rate-limits reads: the event fetch is retried, not answered 500', async () => {
    const tenant = 'limited';
    await map(tenant);
    fake.addCustomers('cus_someone_else');
    const since = fake.clock.now();
    await store([{ tenant, customer: 'c', meter: 'tokens', value: '7' }]);
    await cycleAndDrain(pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }))));
    expect((await statuses(tenant)).get('c')).toBe('reported');
    const [delivery] = fake.webhooks.fromAsyncErrors({ since });
    // The account's rate limit is spent (as by a pusher at full pace) when the report arrives.
    const fetches429 = () => fake.calls().filter((c) => c.endpoint === 'GET /v2/core/events/:id' && c.status === 429).length;
    const before = fetches429();
    const burst = await Promise.all(Array.from({ length: 30 }, () => fake.client({ maxNetworkRetries: 0 }).billing.meters.list().then(() => 200, (e: { statusCode?: number }) => e.statusCode)));
    expect(burst).toContain(429);
    expect((await fake.webhooks.deliver(`${server.url}/webhooks/stripe`, delivery!)).status).toBe(200);
    expect(fetches429()).toBeGreaterThan(before);
    expect((await statuses(tenant)).get('c')).toBe('failed');
  });
});

describe('reconcile that can be trusted', () => {
  const at = (hoursAgo: number) => thisHour - hoursAgo * HOUR + 60_000;
  const rowOf = (r: Awaited<ReturnType<typeof reconcile>>, tenant: string) => r.drift.filter((d) => d.tenant === tenant);

  it("reports usage Stripe has not processed yet as unsettled, not as drift, and compares it once Stripe's summaries catch up", async () => {
    await map('lag');
    fake.settings.summaryLagMs = 60_000;
    try {
      await store([{ tenant: 'lag', customer: 'c', meter: 'tokens', value: '10' }]);
      await cycleAndDrain(pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }))));
      const range = { from: thisHour - HOUR, to: thisHour + HOUR, epsilon: 0.005 };
      const fresh = await reconcile(ch.client, ch.database, meters, fake.client(), range);
      expect(rowOf(fresh, 'lag')).toEqual([expect.objectContaining({ reported: '10', stripe: '0', unsettled: '10', drift: '0', ok: true })]);
      fake.clock.advance(61_000);
      const settled = await reconcile(ch.client, ch.database, meters, fake.client(), range);
      expect(rowOf(settled, 'lag')).toEqual([expect.objectContaining({ reported: '10', stripe: '10', unsettled: '0', drift: '0', ok: true })]);
      // Long after, a shortfall is drift again (here: the event cancelled at Stripe).
      const [ev] = fake.acceptedEvents({ customer: 'cus_lag_c' });
      // This set-up call goes through the fake's test-mode limit (25 calls a second) like any
      // other: wait out the second the reconciles above used, or on a fast machine it is a 429.
      await new Promise((r) => setTimeout(r, 1_100));
      await fake.client().billing.meterEventAdjustments.create({ event_name: 'tokens', type: 'cancel', cancel: { identifier: ev!.identifier } });
      const later = await reconcile(ch.client, ch.database, meters, fake.client(), { ...range, clock: () => Date.now() + 16 * 60_000 });
      expect(rowOf(later, 'lag')).toEqual([expect.objectContaining({ stripe: '0', drift: '10', ok: false })]);
    } finally {
      fake.clock.advance(-61_000);
      fake.settings.summaryLagMs = 1_000;
    }
  });

  it('compares windows as they were pushed: a delta timestamped in the latest window carries usage of earlier windows', async () => {
    await map('align');
    fake.settings.summaryLagMs = 0;
    try {
      // Usage three hours ago and one hour ago, pushed together: one delta of 80, timestamped an hour ago.
      await store([{ tenant: 'align', customer: 'c', meter: 'tokens', value: '50', timestamp: at(3) }, { tenant: 'align', customer: 'c', meter: 'tokens', value: '30', timestamp: at(1) }]);
      await cycleAndDrain(pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }))));
      expect(fake.acceptedEvents({ customer: 'cus_align_c' }).map((e) => e.value)).toEqual([80n]);
      const recent = await reconcile(ch.client, ch.database, meters, fake.client(), { from: thisHour - 2 * HOUR, to: thisHour, epsilon: 0.005 });
      expect(rowOf(recent, 'align')).toEqual([expect.objectContaining({ local: '30', reported: '80', stripe: '80', drift: '0', ok: true })]);
      const earlier = await reconcile(ch.client, ch.database, meters, fake.client(), { from: thisHour - 4 * HOUR, to: thisHour - 2 * HOUR, epsilon: 0.005 });
      expect(rowOf(earlier, 'align')).toEqual([expect.objectContaining({ local: '50', reported: '0', stripe: '0', drift: '0', ok: true })]);
    } finally {
      fake.settings.summaryLagMs = 1_000;
    }
  });

  it("stays under the rate limit it is given, and a 429 retries the read instead of aborting the run", async () => {
    const customers = ['a', 'b', 'c', 'd', 'e', 'f'];
    await importCustomers(ch.client, ch.database, customers.map((c) => ({ tenant: 'rl', customer: c, stripeCustomerId: `cus_rl_${c}` })), Date.now());
    // Six hours ago: a range no other test of this file has usage in.
    await store(customers.map((c) => ({ tenant: 'rl', customer: c, meter: 'tokens', value: '2', timestamp: at(6) })));
    await cycleAndDrain(pusherWith(createMeterEventsSink(fake.client({ maxNetworkRetries: 0 }))));
    const range = { from: thisHour - 6 * HOUR, to: thisHour - 5 * HOUR, epsilon: 0.005 };
    fake.settings.rateLimitPerSecond = 2;
    try {
      const rateLimited = () => fake.calls().filter((c) => c.status === 429).length;
      // Paced at under 2 calls/s: Stripe never says 429.
      const limiter = createRateLimiter(1.8);
      let before = rateLimited();
      const paced = await reconcile(ch.client, ch.database, meters, fake.client({ maxNetworkRetries: 0 }), { ...range, pacing: { rateLimit: () => limiter.take() } });
      expect(rowOf(paced, 'rl')).toHaveLength(6);
      expect(rateLimited()).toBe(before);
      // Unpaced: Stripe answers 429s, and the run still completes.
      await new Promise((r) => setTimeout(r, 1_100));
      before = rateLimited();
      const unpaced = await reconcile(ch.client, ch.database, meters, fake.client({ maxNetworkRetries: 0 }), range);
      expect(rateLimited()).toBeGreaterThan(before);
      expect(rowOf(unpaced, 'rl').map((d) => d.ok)).toEqual(customers.map(() => true));
    } finally {
      fake.settings.rateLimitPerSecond = 25;
    }
  }, 60_000);
});

describe('v2 meter event stream', () => {
  it('a batch refused with a 400 does not fail all its events: the invalid one is found by splitting, the rest are delivered', async () => {
    const customers = Array.from({ length: 10 }, (_, i) => `s${i}`);
    await importCustomers(ch.client, ch.database, customers.map((c) => ({ tenant: 'split', customer: c, stripeCustomerId: `cus_split_${c}` })), Date.now());
    // Any stream request carrying s3's event is refused as a whole.
    fake.inject({ kind: 'status', status: 400, path: '/v2/billing/meter_event_stream', customer: 'cus_split_s3', times: 50 });
    // A long linger: the ten pushes of the cycle go out as one batch.
    const sink = createMeterEventStreamSink(fake.client({ maxNetworkRetries: 0 }), { lingerMs: 1_500 });
    const limiter = createRateLimiter(1000);
    await store(customers.map((c) => ({ tenant: 'split', customer: c, meter: 'tokens', value: '3' })));
    await cycleAndDrain(pusherWith(sink, { rateLimit: () => limiter.take() }));
    await sink.close();
    const byCustomer = new Map((await createPushStore(ch.client, ch.database).list({ tenant: 'split' })).map((p) => [p.customer, p]));
    expect(byCustomer.get('s3')).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/400/) });
    for (const c of customers.filter((x) => x !== 's3')) {
      expect(byCustomer.get(c)!.status).toBe('reported');
      expect(fake.totalFor(`cus_split_${c}`, 'tokens')).toBe(3n);
    }
    // One batch of ten was refused, then halves of it, down to s3 alone.
    const streamCalls = fake.calls().filter((c) => c.path === '/v2/billing/meter_event_stream');
    expect(streamCalls.filter((c) => c.status === 400).length).toBeGreaterThanOrEqual(4);
    expect(fake.identifierLog().filter((a) => a.via === 'stream' && a.customer?.startsWith('cus_split_') && a.outcome === 'accepted')).toHaveLength(9);
    fake.clearFaults();
  });
});
