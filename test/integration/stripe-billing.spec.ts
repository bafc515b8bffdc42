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
