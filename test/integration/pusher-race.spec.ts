import { importCustomers } from '../../src/adapters/clickhouse/customer-store';
import type { NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createPushStore, type PushStore } from '../../src/adapters/clickhouse/push-store';
import { createStreamStore, type StreamStore } from '../../src/adapters/clickhouse/stream-store';
import type { BillingSink } from '../../src/adapters/stripe/billing-sink';
import { createMeterEventsSink } from '../../src/adapters/stripe/meter-events-sink';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { storeAsIngest } from '../helpers/ledger';
import { startPushLoop } from '../../src/pipeline/push-loop';
import type { Pusher } from '../../src/pipeline/pusher';
import { startFakeStripe, type FakeStripe } from '../fakes/stripe';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { testPusher } from '../helpers/pusher';
import { silentLogger } from '../../src/runtime/logger';
import { waitFor } from '../helpers/wait';

/**
 * Why one consumer group has one pusher. Pushes are planned from shared tables: two pushers
 * that both read "pushed = 0" before either records its push, with the total moving in between,
 * send two different deltas under two different identifiers, and Stripe bills both.
 */
const HOUR = 3_600_000;
const thisHour = Math.floor(Date.now() / HOUR) * HOUR;
const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;

describe('pushers of several workers', () => {
  let ch: TestClickHouse;
  let fake: FakeStripe;
  let seq = 0;

  async function store(tenant: string, value: string) {
    seq += 1;
    const event: UsageEvent = { id: `r${seq}`, tenant, customer: 'c', meter: 'tokens', value, timestamp: thisHour + 60_000, properties: {}, source: null };
    const meter = meters.get('tokens')!;
    const batch: NewEvent[] = [{ candidate: candidateOf({ topic: 'race', partition: 0, offset: String(seq) }, event, meter), lateness: decideLateness(event.timestamp, meter, null) }];
    await storeAsIngest(ch.client, ch.database, batch);
  }

  const pusher = ({ sink, ...opts }: { streams?: StreamStore; pushes?: PushStore; sink?: BillingSink; active?: () => boolean } = {}): Pusher =>
    testPusher(ch, sink ?? createMeterEventsSink(fake.client({ maxNetworkRetries: 0 })), meters, opts);

  const only = (tenant: string): StreamStore => {
    const real = createStreamStore(ch.client, ch.database);
    return { ...real, deltaStreams: async (m) => (await real.deltaStreams(m)).filter((s) => s.tenant === tenant) };
  };

  /**
   * Pushers whose reads of the push ledger wait for each other: both plan from "nothing pushed
   * yet", and the second reads its totals after more usage arrived — the interleaving two
   * workers' push loops can fall into on their own.
   */
  function racingPair(tenant: string, activeB: () => boolean) {
    const arrived: string[] = [];
    let release!: () => void;
    const bothRead = new Promise<void>((r) => (release = r));
    // The reads of the push ledger (what was pushed, then what is pending: one after the other,
    // after the totals) of both pushers complete before either pusher goes on to record anything:
    // each waits at its last read, of what is pending, until both have made it.
    const gated = (name: string): PushStore => {
      const real = createPushStore(ch.client, ch.database);
      const arrive = async <T>(v: T) => {
        arrived.push(name);
        if (arrived.length === 2) release();
        await bothRead;
        return v;
      };
      return { ...real, list: async (filter) => arrive(await real.list(filter)) };
    };
    const streamsRead: string[] = [];
    const tracked = (name: string): StreamStore => {
      const real = createStreamStore(ch.client, ch.database);
      return { ...real, deltaStreams: async (m) => real.deltaStreams(m).then((v) => (streamsRead.push(name), v.filter((s) => s.tenant === tenant))) };
    };
    return {
      a: pusher({ pushes: gated('a'), streams: tracked('a') }),
      b: pusher({ pushes: gated('b'), streams: tracked('b'), active: activeB }),
      aHasRead: () => arrived.includes('a') && streamsRead.includes('a'),
      releaseAlone: () => release(),
    };
  }

  beforeAll(async () => {
    ch = await testClickHouse('pusher_race');
    fake = await startFakeStripe();
    fake.addMeter({ event_name: 'tokens', formula: 'sum' });
    await importCustomers(ch.client, ch.database, ['both', 'one', 'orphan'].map((t) => ({ tenant: t, customer: 'c', stripeCustomerId: `cus_${t}` })), Date.now());
  });

  afterAll(async () => {
    await fake?.close();
    await ch?.close();
  });

  it('two uncoordinated pushers bill usage twice (the bug one pusher per group rules out)', async () => {
    await store('both', '10');
    const { a, b, aHasRead } = racingPair('both', () => true);
    const first = a.cycle();
    await waitFor('pusher A to read totals and the push ledger', aHasRead);
    await store('both', '5'); // usage arrives between the two pushers' reads
    await Promise.all([first, b.cycle()]);
    await Promise.all([a.drain(), b.drain()]);
    // Local total 15; Stripe was sent 0→10 by A and 0→15 by B, under two identifiers.
    expect(fake.totalFor('cus_both', 'tokens')).toBe(25n);
  });

  it('with one active pusher (the owner of partition 0), the same interleaving bills exactly the total', async () => {
    await store('one', '10');
    const { a, b, aHasRead, releaseAlone } = racingPair('one', () => false);
    const first = a.cycle();
    await waitFor('pusher A to read totals and the push ledger', aHasRead);
    await store('one', '5');
    // B is not the pusher: it plans nothing, so it never reaches the ledger read A waits for.
    expect(await b.cycle()).toEqual({ started: 0, awaitingMapping: 0, tooOld: 0, deferred: 0 });
    releaseAlone();
    await first;
    await a.drain();
    expect(fake.totalFor('cus_one', 'tokens')).toBe(10n);
    await a.cycle();
    await a.drain();
    expect(fake.totalFor('cus_one', 'tokens')).toBe(15n);
  });

  it('a pusher taking over resends what its predecessor left pending, once, and then carries on', async () => {
    await store('orphan', '7');
    // The predecessor records its push as pending, then dies before Stripe hears of it.
    const dying = pusher({ streams: only('orphan'), sink: { shadow: false, send: () => new Promise(() => undefined), close: async () => undefined } });
    expect((await dying.cycle()).started).toBe(1);
    const pending = (await createPushStore(ch.client, ch.database).list({ status: 'pending', tenant: 'orphan' }))[0]!;
    expect(pending.value).toBe(7n);

    let leader = false;
    const successor = pusher({ streams: only('orphan'), active: () => leader });
    const loop = await startPushLoop(successor, silentLogger(), 50, { isLeader: () => leader, graceMs: 200 });
    try {
      await new Promise((r) => setTimeout(r, 300));
      expect(fake.totalFor('cus_orphan', 'tokens')).toBe(0n); // not the pusher yet: nothing sent
      leader = true;
      await waitFor('the successor to deliver the orphaned push', () => fake.totalFor('cus_orphan', 'tokens') === 7n, 10_000);
      await store('orphan', '1');
      await waitFor('the successor to push new usage', () => fake.totalFor('cus_orphan', 'tokens') === 8n, 10_000);
    } finally {
      await loop.stop();
    }
    const sent = fake.identifierLog().filter((x) => x.identifier === pending.identifier && x.outcome === 'accepted');
    expect(sent).toHaveLength(1);
  });
});
