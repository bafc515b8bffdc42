/**
 * The pusher's totals follow recent usage, not the history (issue 16, "cost follows the work"):
 * a stream's older windows are read once and kept in memory; afterwards only windows from the
 * split point (start of yesterday) are read, and a change the change record announces in an
 * older window makes the stream be read whole again. Totals stay exact throughout.
 */
import type { TupleParam } from '@clickhouse/client';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createStreamStore, type StreamStore } from '../../src/adapters/clickhouse/stream-store';
import { periodTotalsFrom } from '../../src/adapters/clickhouse/period-totals';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import { splitPoint } from '../../src/domain/stream-parts';
import type { UsageEvent } from '../../src/domain/usage-event';
import { testClickHouse, type TestClickHouse } from '../helpers/clickhouse';

const parsed = parseMeterCatalog({
  meters: [
    { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } },
    { name: 'peak', aggregation: 'max', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'peak' } },
    { name: 'seats', aggregation: 'unique_count', unique_property: 'user', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'seats' } },
  ],
});
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const NOW = Date.parse('2026-11-20T12:00:00Z');
const SPLIT = splitPoint(NOW); // 2026-11-19T00:00Z

describe('stream totals: the pusher reads recent windows, keeps the older span in memory', () => {
  let ch: TestClickHouse;
  let seq = 0;
  const put = async (customer: string, meter: string, value: string, at: number, user = 'u1') => {
    seq += 1;
    const event: UsageEvent = { id: `st${seq}`, tenant: 'st', customer, meter, value, timestamp: at, properties: { user }, source: null };
    const m = meters.get(meter)!;
    const e: NewEvent = { candidate: candidateOf({ topic: 'st', partition: 0, offset: String(seq) }, event, m), lateness: decideLateness(at, m, null) };
    await createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * DAY }).insertNew([e], Date.now());
  };
  const delta = async (s: StreamStore, customer: string, oldest?: number) =>
    (await s.deltaStreams(['tokens'], oldest === undefined ? undefined : [{ tenant: 'st', customer, meter: 'tokens', oldestWindowStart: oldest, newestWindowStart: oldest }])).find((d) => d.customer === customer)?.total;
  const absolute = async (s: StreamStore, meter: string, customer: string, oldest?: number) =>
    (await s.absoluteStreams([meter], 1, oldest === undefined ? undefined : [{ tenant: 'st', customer, meter, oldestWindowStart: oldest }], oldest ?? 0))
      .filter((a) => a.customer === customer)
      .map((a) => `${new Date(a.periodStart).toISOString().slice(0, 10)}=${a.value}`)
      .sort();

  /**
   * A client that records the statements a store issues: how many, the most running at once, and
   * per statement of a scoped read the streams it names (its `streams` parameter, as tenant/customer/meter).
   */
  const recording = () => {
    const seen = { issued: 0, running: 0, mostAtOnce: 0, named: [] as string[][] };
    const client = new Proxy(ch.client, {
      get(target, prop) {
        const value = Reflect.get(target, prop) as unknown;
        if (typeof value !== 'function') return value;
        if (prop !== 'query') return value.bind(target);
        return async (p: { query_params?: { streams?: TupleParam[] } }) => {
          if (p.query_params?.streams) seen.named.push(p.query_params.streams.map((t) => t.values.join('/')));
          seen.issued += 1;
          seen.running += 1;
          seen.mostAtOnce = Math.max(seen.mostAtOnce, seen.running);
          try {
            return await (value as (a: unknown) => Promise<unknown>).call(target, p);
          } finally {
            seen.running -= 1;
          }
        };
      },
    });
    return { client, seen, named: seen.named };
  };

  beforeAll(async () => {
    ch = await testClickHouse('stream_totals');
  });
  afterAll(async () => ch?.close());

  it('delta: exact totals from a kept older span plus recent windows; an unannounced old change is not read, an announced one is', async () => {
    const store = createStreamStore(ch.client, ch.database, { clock: () => NOW, proveProjection: true });
    await put('a', 'tokens', '10.5', SPLIT - 3 * DAY);
    await put('a', 'tokens', '1', SPLIT + HOUR);
    expect(await delta(store, 'a')).toBe('11.5'); // the first read is whole
    await put('a', 'tokens', '2', NOW - HOUR);
    expect(await delta(store, 'a', NOW - HOUR)).toBe('13.5');
    // Written into an old window but announced as a recent change: a read of recent windows only
    // cannot see it (the proof that older windows are not read)…
    await put('a', 'tokens', '100', SPLIT - 2 * DAY);
    expect(await delta(store, 'a', NOW - HOUR)).toBe('13.5');
    // …announced with its window (as ingest records it), the stream is read whole and exact.
    expect(await delta(store, 'a', SPLIT - 2 * DAY)).toBe('113.5');
    // And the kept span is now the new one: a recent change adds to it.
    await put('a', 'tokens', '0.25', NOW);
    expect(await delta(store, 'a', NOW)).toBe('113.75');
    // A periodic full scan reads recent windows of every stream, merged with what is kept.
    expect(await delta(store, 'a')).toBe('113.75');
    // forget() (a new term): the next unscoped read is whole again.
    store.forget();
    expect(await delta(store, 'a')).toBe('113.75');
  });

  it('delta: a stream first seen through the change record is read whole once', async () => {
    await put('b', 'tokens', '5', SPLIT - 10 * DAY);
    await put('b', 'tokens', '7', NOW - HOUR);
    const store = createStreamStore(ch.client, ch.database, { clock: () => NOW, proveProjection: true });
    expect(await delta(store, 'b', NOW - HOUR)).toBe('12');
  });

  it('absolute: a period value composes (max) across the split; a unique count is always read whole', async () => {
    const store = createStreamStore(ch.client, ch.database, { clock: () => NOW, proveProjection: true });
    await put('c', 'peak', '9', Date.parse('2026-11-03T10:00:00Z'));
    await put('c', 'peak', '4', SPLIT + 2 * HOUR);
    await put('c', 'peak', '6', Date.parse('2026-10-20T10:00:00Z'));
    expect(await absolute(store, 'peak', 'c')).toEqual(['2026-10-01=6', '2026-11-01=9']);
    await put('c', 'peak', '5', NOW - HOUR);
    expect(await absolute(store, 'peak', 'c', NOW - HOUR)).toEqual(['2026-11-01=9']);
    await put('c', 'peak', '12', NOW);
    expect(await absolute(store, 'peak', 'c', NOW)).toEqual(['2026-11-01=12']);

    // Two users before the split, one of them again after it: 2, never 3.
    const { client, named } = recording();
    const seats = createStreamStore(client, ch.database, { clock: () => NOW, proveProjection: true });
    await put('d', 'seats', '1', SPLIT - 5 * DAY, 'ann');
    await put('d', 'seats', '1', SPLIT - 4 * DAY, 'bob');
    expect(await absolute(seats, 'seats', 'd')).toEqual(['2026-11-01=2']);
    await put('d', 'seats', '1', NOW - HOUR, 'ann');
    named.length = 0;
    expect(await absolute(seats, 'seats', 'd', NOW - HOUR)).toEqual(['2026-11-01=2']);
    // Known to be a unique count: one statement reads it whole (none of its recent windows first).
    expect(named).toEqual([['st/d/seats']]);
    await put('d', 'seats', '1', NOW, 'cid');
    expect(await absolute(seats, 'seats', 'd', NOW)).toEqual(['2026-11-01=3']);
  });

  it('reads in pieces of a few streams, one statement at a time, with the totals of one read', async () => {
    // Customers with one to three streams, some usage before the split, some unique counts.
    for (const [i, customer] of ['p1', 'p2', 'p3', 'p4', 'p5'].entries()) {
      await put(customer, 'tokens', `${i + 1}.5`, SPLIT - (i + 1) * DAY);
      await put(customer, 'tokens', '2', NOW - HOUR);
      if (i % 2 === 0) await put(customer, 'peak', `${10 + i}`, NOW - 2 * HOUR);
      if (i === 4) {
        await put(customer, 'seats', '1', SPLIT - DAY, 'ann');
        await put(customer, 'seats', '1', NOW, 'bob');
      }
    }
    const { client: wholeClient, seen: whole } = recording();
    const { client: piecesClient, seen: pieces } = recording();
    const oneRead = createStreamStore(wholeClient, ch.database, { clock: () => NOW, proveProjection: true });
    const inPieces = createStreamStore(piecesClient, ch.database, { clock: () => NOW, proveProjection: true, streamsPerRead: 2 });
    const read = async (s: StreamStore, scope?: { tenant: string; customer: string; meter: string; oldestWindowStart: number }[]) => ({
      deltas: (await s.deltaStreams(['tokens'], scope)).filter((d) => d.customer.startsWith('p')).sort((a, b) => a.customer.localeCompare(b.customer)),
      absolutes: (await s.absoluteStreams(['peak', 'seats'], 1, scope, scope ? SPLIT - 10 * DAY : 0))
        .filter((a) => a.customer.startsWith('p'))
        .sort((a, b) => `${a.customer}${a.meter}${a.periodStart}`.localeCompare(`${b.customer}${b.meter}${b.periodStart}`)),
    });
    const expected = await read(oneRead);
    expect(expected.deltas.map((d) => `${d.customer}=${d.total}`)).toEqual(['p1=3.5', 'p2=4.5', 'p3=5.5', 'p4=6.5', 'p5=7.5']);
    expect(expected.absolutes.map((a) => `${a.customer}/${a.meter}=${a.value}`)).toEqual(['p1/peak=10', 'p3/peak=12', 'p5/peak=14', 'p5/seats=2']);
    // Unscoped (a full cycle after forget(), then a periodic one) and scoped: the same totals.
    expect(await read(inPieces)).toEqual(expected);
    expect(await read(inPieces)).toEqual(await read(oneRead));
    const scope = ['p1', 'p2', 'p3', 'p4', 'p5'].flatMap((customer) =>
      ['tokens', 'peak', 'seats'].map((meter) => ({ tenant: 'st', customer, meter, oldestWindowStart: SPLIT - 10 * DAY })),
    );
    expect(await read(inPieces, scope)).toEqual(await read(oneRead, scope));
    // More, smaller statements, never two at once (a read issued all at once queued them together).
    expect(pieces.issued).toBeGreaterThan(2 * whole.issued);
    expect(pieces.mostAtOnce).toBe(1);
    expect(whole.mostAtOnce).toBe(1);
  });

  it("names only its own meters' streams in a scoped read's statements", async () => {
    await put('m1', 'tokens', '3', NOW - HOUR);
    await put('m1', 'peak', '8', NOW - HOUR);
    const { client, named } = recording();
    const store = createStreamStore(client, ch.database, { clock: () => NOW, proveProjection: true });
    const scope = ['tokens', 'peak'].map((meter) => ({ tenant: 'st', customer: 'm1', meter, oldestWindowStart: NOW - HOUR }));
    expect((await store.deltaStreams(['tokens'], scope)).map((d) => `${d.meter}=${d.total}`)).toEqual(['tokens=3']);
    expect(named.length).toBeGreaterThan(0);
    expect(named.flat()).toEqual(named.flat().map(() => 'st/m1/tokens'));
    named.length = 0;
    expect((await store.absoluteStreams(['peak'], 1, scope, NOW - HOUR)).map((a) => `${a.meter}=${a.value}`)).toEqual(['peak=8']);
    expect(named.length).toBeGreaterThan(0);
    expect(named.flat()).toEqual(named.flat().map(() => 'st/m1/peak'));
    // A scope with none of the read's meters issues no statement.
    named.length = 0;
    expect(await store.deltaStreams(['tokens'], [scope[1]!])).toEqual([]);
    expect(named).toEqual([]);
  });

  it('renews its split once it is three days old, and stays exact', async () => {
    let now = NOW;
    const store = createStreamStore(ch.client, ch.database, { clock: () => now });
    await put('e', 'tokens', '1', NOW - 2 * DAY);
    expect(await delta(store, 'e')).toBe('1');
    now = NOW + 4 * DAY;
    await put('e', 'tokens', '2', now - HOUR);
    expect(await delta(store, 'e', now - HOUR)).toBe('3');
  });

  it("the alerter's period totals: a cycle reads the changed streams' recent windows, not the month; a new term reads it whole", async () => {
    const totals = periodTotalsFrom(createStreamStore(ch.client, ch.database, { clock: () => NOW, proveProjection: true }), 1);
    const period = async (customer: string, oldest?: number) =>
      (await totals.read({ meters: ['tokens'], scope: oldest === undefined ? undefined : [{ tenant: 'st', customer, meter: 'tokens', oldestWindowStart: oldest }], fromTime: oldest ?? NOW }))
        .filter((t) => t.customer === customer)
        .map((t) => `${new Date(t.periodStart).toISOString().slice(0, 10)}..${new Date(t.periodEnd).toISOString().slice(0, 10)}=${t.totalUnits}`);
    await put('f', 'tokens', '40', Date.parse('2026-11-02T10:00:00Z'));
    await put('f', 'tokens', '9', Date.parse('2026-10-30T10:00:00Z')); // the previous period: not asked for
    await put('f', 'tokens', '1.5', SPLIT + HOUR);
    const B = 1_000_000_000n;
    expect(await period('f')).toEqual([`2026-11-01..2026-12-01=${415n * B / 10n}`]);
    await put('f', 'tokens', '2', NOW - HOUR);
    expect(await period('f', NOW - HOUR)).toEqual([`2026-11-01..2026-12-01=${435n * B / 10n}`]);
    // Written into an older window of the month but announced as recent: a cycle that read the
    // month would see it; this one reads recent windows only (the proof that the month is not read)…
    await put('f', 'tokens', '100', Date.parse('2026-11-05T10:00:00Z'));
    expect(await period('f', NOW - HOUR)).toEqual([`2026-11-01..2026-12-01=${435n * B / 10n}`]);
    // …announced with its window (as ingest records it), the stream's period is read whole, exactly.
    expect(await period('f', Date.parse('2026-11-05T10:00:00Z'))).toEqual([`2026-11-01..2026-12-01=${1435n * B / 10n}`]);
    // A new term forgets, and reads every stream's period whole.
    await put('f', 'tokens', '1000', Date.parse('2026-11-06T10:00:00Z'));
    totals.forget();
    expect(await period('f')).toEqual([`2026-11-01..2026-12-01=${11435n * B / 10n}`]);
  });

  it("the alerter's period totals stay exact when the split lies in the previous period (a late event for it after a term start)", async () => {
    // Six hours into December: the split (start of yesterday) lies in November.
    const now = Date.parse('2026-12-01T06:00:00Z');
    const totals = periodTotalsFrom(createStreamStore(ch.client, ch.database, { clock: () => now, proveProjection: true }), 1);
    const read = async (oldest?: number) =>
      (await totals.read({ meters: ['tokens'], scope: oldest === undefined ? undefined : [{ tenant: 'st', customer: 'g', meter: 'tokens', oldestWindowStart: oldest }], fromTime: oldest ?? now }))
        .filter((t) => t.customer === 'g')
        .map((t) => `${new Date(t.periodStart).toISOString().slice(0, 7)}=${t.totalUnits / 1_000_000_000n}`)
        .sort();
    await put('g', 'tokens', '500', Date.parse('2026-11-10T10:00:00Z'));
    await put('g', 'tokens', '20', Date.parse('2026-11-30T10:00:00Z'));
    await put('g', 'tokens', '3', Date.parse('2026-12-01T01:00:00Z'));
    // A term starts: the current period only.
    expect(await read()).toEqual(['2026-12=3']);
    // A late event for November's last day (after the split), announced with its window: November whole.
    await put('g', 'tokens', '1', Date.parse('2026-11-30T23:00:00Z'));
    expect(await read(Date.parse('2026-11-30T23:00:00Z'))).toEqual(['2026-11=521', '2026-12=3']);
    // A check of December alone does not bring November back.
    await put('g', 'tokens', '4', Date.parse('2026-12-01T05:00:00Z'));
    expect(await read(Date.parse('2026-12-01T05:00:00Z'))).toEqual(['2026-12=7']);
  });
});
