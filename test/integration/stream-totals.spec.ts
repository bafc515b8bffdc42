/**
 * The pusher's totals follow recent usage, not the history (issue 16, "cost follows the work"):
 * a stream's older windows are read once and kept in memory; afterwards only windows from the
 * split point (start of yesterday) are read, and a change the change record announces in an
 * older window makes the stream be read whole again. Totals stay exact throughout.
 */
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createStreamStore, type StreamStore } from '../../src/adapters/clickhouse/stream-store';
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
    await put('d', 'seats', '1', SPLIT - 5 * DAY, 'ann');
    await put('d', 'seats', '1', SPLIT - 4 * DAY, 'bob');
    expect(await absolute(store, 'seats', 'd')).toEqual(['2026-11-01=2']);
    await put('d', 'seats', '1', NOW - HOUR, 'ann');
    expect(await absolute(store, 'seats', 'd', NOW - HOUR)).toEqual(['2026-11-01=2']);
    await put('d', 'seats', '1', NOW, 'cid');
    expect(await absolute(store, 'seats', 'd', NOW)).toEqual(['2026-11-01=3']);
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
});
