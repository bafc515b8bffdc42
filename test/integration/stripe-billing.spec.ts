/**
 * Billing correctness against the stricter fake Stripe (issue 17): meter configuration and
 * payload keys, stuck pushes, sampled error reports, the v2 stream's 400s, and reconcile.
 */
import { createCounterStore } from '../../src/adapters/clickhouse/counter-store';
import { importCustomers } from '../../src/adapters/clickhouse/customer-store';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createPushStore } from '../../src/adapters/clickhouse/push-store';
import { createStreamStore } from '../../src/adapters/clickhouse/stream-store';
import type { BillingSink } from '../../src/adapters/stripe/billing-sink';
import { createMeterEventsSink } from '../../src/adapters/stripe/meter-events-sink';
import { listStripeMeters } from '../../src/adapters/stripe/meters';
import { windowKeyString, type WindowKey } from '../../src/domain/counters';
import { bodyHash } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog, type MeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { windowOf } from '../../src/domain/windows';
import { refreshCounters } from '../../src/pipeline/counters';
import { createPusher, type Pusher, type PusherDeps } from '../../src/pipeline/pusher';
import { startMeterGate } from '../../src/pipeline/stripe-meter-gate';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { createRateLimiter } from '../../src/runtime/rate-limiter';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';

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

/** Stores events in the ledger and recomputes their counters, as ingest does. */
async function store(events: { tenant: string; customer: string; meter: string; value: string; timestamp?: number }[]) {
  const ledger = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 });
  const batch: NewEvent[] = events.map((e) => {
    seq += 1;
    const event: UsageEvent = { timestamp: thisHour + 60_000, ...e, id: `sb${seq}`, properties: {}, source: null };
    const meter = meters.get(event.meter)!;
    return { candidate: { ref: { topic: 'sb', partition: 0, offset: String(seq) }, event, meter, bodyHash: bodyHash(event) }, lateness: decideLateness(event.timestamp, meter, null) };
  });
  await ledger.insertNew(batch, Date.now());
  const keys = new Map<string, WindowKey>();
  for (const b of batch) {
    const e = b.candidate.event;
    const k = { tenant: e.tenant, customer: e.customer, meter: e.meter, windowStart: windowOf(e.timestamp, 'hour').start };
    keys.set(windowKeyString(k), k);
  }
  await refreshCounters(createCounterStore(ch.client, ch.database), [...keys.values()], null, Date.now);
}

function pusherWith(sink: BillingSink, extra: Partial<PusherDeps> = {}, catalog: MeterCatalog = meters): Pusher {
  const limiter = createRateLimiter(20);
  return createPusher({
    streams: createStreamStore(ch.client, ch.database),
    pushes: createPushStore(ch.client, ch.database),
    sink,
    meters: () => catalog,
    clock: Date.now,
    logger: silentLogger(),
    rateLimit: () => limiter.take(),
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
    ...extra,
  });
}
const cycleAndDrain = async (p: Pusher) => {
  const s = await p.cycle();
  await p.drain();
  return s;
};
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
