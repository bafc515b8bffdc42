import { advanceState, counterFrom, counterVersion, type WindowAggregates } from '../../src/domain/counters';
import { counterState, createLatenessDecider, decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import { assign, currentWatermark, observe, type WatermarkState } from '../../src/domain/watermarks';
import { isCoarserOrEqual, monthOf, windowOf } from '../../src/domain/windows';

const T = (iso: string) => Date.parse(iso);
const opts = { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 };

describe('window assignment (UTC, half-open)', () => {
  it('given an event exactly at a window end, then it belongs to the next window', () => {
    expect(windowOf(T('2026-11-22T11:00:00Z'), 'hour')).toEqual({ start: T('2026-11-22T11:00:00Z'), end: T('2026-11-22T12:00:00Z') });
    expect(windowOf(T('2026-11-22T10:59:59.999Z'), 'hour').start).toBe(T('2026-11-22T10:00:00Z'));
  });
  it('given minute and day windows, then they align to UTC minutes and midnights', () => {
    expect(windowOf(T('2026-11-22T10:15:30.500Z'), 'minute')).toEqual({ start: T('2026-11-22T10:15:00Z'), end: T('2026-11-22T10:16:00Z') });
    expect(windowOf(T('2026-11-22T23:59:59.999Z'), 'day')).toEqual({ start: T('2026-11-22T00:00:00Z'), end: T('2026-11-23T00:00:00Z') });
    expect(windowOf(T('2026-11-23T00:00:00Z'), 'day').start).toBe(T('2026-11-23T00:00:00Z'));
  });
  it('given a date in a month, then the calendar month (UTC) contains it, including December', () => {
    expect(monthOf(T('2026-12-31T23:59:59Z'))).toEqual({ start: T('2026-12-01T00:00:00Z'), end: T('2027-01-01T00:00:00Z') });
  });
  it('only reports a meter per window at least as coarse as its own', () => {
    expect(isCoarserOrEqual('month', 'hour')).toBe(true);
    expect(isCoarserOrEqual('hour', 'hour')).toBe(true);
    expect(isCoarserOrEqual('minute', 'hour')).toBe(false);
  });
});

describe('watermarks', () => {
  const now = T('2026-11-22T12:00:00Z');
  const given = (...events: [number, string][]): WatermarkState =>
    events.reduce<WatermarkState>((s, [p, iso]) => observe(s, p, T(iso), now), assign(new Map(), [0, 1], now));

  it('given events in one partition, then its watermark is the newest event time minus the out-of-orderness', () => {
    const s = observe(assign(new Map(), [0], now), 0, T('2026-11-22T11:00:10Z'), now);
    expect(currentWatermark(s, now, opts)).toBe(T('2026-11-22T11:00:05Z'));
  });
  it('never moves backwards when an older event arrives', () => {
    const s = given([0, '2026-11-22T11:00:10Z'], [0, '2026-11-22T10:00:00Z']);
    expect(s.get(0)!.maxEventTime).toBe(T('2026-11-22T11:00:10Z'));
  });
  it('given two partitions, then the worker watermark is the minimum', () => {
    const s = given([0, '2026-11-22T11:30:00Z'], [1, '2026-11-22T11:00:05Z']);
    expect(currentWatermark(s, now, opts)).toBe(T('2026-11-22T11:00:00Z'));
  });
  it('given an assigned partition that has shown no event yet, then nothing is late (null)', () => {
    const s = given([0, '2026-11-22T11:30:00Z']);
    expect(currentWatermark(s, now, opts)).toBeNull();
  });
  it('given a partition idle beyond the timeout, then it no longer stalls the watermark', () => {
    const s = given([0, '2026-11-22T11:30:00Z'], [1, '2026-11-22T11:00:05Z']);
    const later = now + 31_000;
    const s2 = observe(s, 0, T('2026-11-22T11:40:00Z'), later);
    expect(currentWatermark(s2, later, opts)).toBe(T('2026-11-22T11:39:55Z'));
  });
  it('given every partition idle, then the most advanced one speaks', () => {
    const s = given([0, '2026-11-22T11:30:00Z'], [1, '2026-11-22T11:00:05Z']);
    expect(currentWatermark(s, now + 60_000, opts)).toBe(T('2026-11-22T11:29:55Z'));
  });
  it('given a rebalance, then kept partitions keep their clocks and new ones start from the restored value', () => {
    const s = given([0, '2026-11-22T11:30:00Z']);
    const s2 = assign(s, [0, 2], now, new Map([[2, T('2026-11-22T11:10:00Z')]]));
    expect([...s2.keys()]).toEqual([0, 2]);
    expect(currentWatermark(s2, now, opts)).toBe(T('2026-11-22T11:09:55Z'));
  });
});

describe('lateness decisions', () => {
  const parsed = parseMeterCatalog({ meters: [{ name: 'm', aggregation: 'sum', window: 'hour', allowed_lateness: '30m' }] });
  if (!parsed.ok) throw new Error('catalog');
  const meter = parsed.catalog.get('m')!;
  const at = T('2026-11-22T10:20:00Z'); // window 10:00-11:00, final at 11:30

  it('given no watermark yet, then an event is counted on time', () => {
    expect(decideLateness(at, meter, null)).toMatchObject({ disposition: 'counted', late: false });
  });
  it('given a watermark inside the window, then it is counted on time', () => {
    expect(decideLateness(at, meter, T('2026-11-22T10:59:59Z'))).toMatchObject({ disposition: 'counted', late: false });
  });
  it('given a watermark past the end but within the allowed lateness, then it is counted late (its window changes)', () => {
    expect(decideLateness(at, meter, T('2026-11-22T11:00:00Z'))).toMatchObject({ disposition: 'counted', late: true });
    expect(decideLateness(at, meter, T('2026-11-22T11:29:59.999Z'))).toMatchObject({ disposition: 'counted', late: true });
  });
  it('given a watermark at end + allowed lateness, then it is too late, with a reason', () => {
    const d = decideLateness(at, meter, T('2026-11-22T11:30:00Z'));
    expect(d.disposition).toBe('too_late');
    expect(d.disposition === 'too_late' && d.reason).toMatch(/was final: watermark 2026-11-22T11:30:00.000Z/);
  });
  it('moves a counter open → closed → final as the watermark passes end and end + lateness', () => {
    const w = windowOf(at, 'hour');
    expect(counterState(w, 1_800_000, T('2026-11-22T10:59:00Z'))).toBe('open');
    expect(counterState(w, 1_800_000, T('2026-11-22T11:00:00Z'))).toBe('closed');
    expect(counterState(w, 1_800_000, T('2026-11-22T11:30:00Z'))).toBe('final');
  });
  it('decides a batch exactly as one event at a time: each (meter, window, backfill) once, the decision shared', () => {
    const catalog = parseMeterCatalog({
      meters: [
        { name: 'h', aggregation: 'sum', window: 'hour', allowed_lateness: '30m' },
        { name: 'mi', aggregation: 'count', window: 'minute', allowed_lateness: '0s' },
        { name: 'd', aggregation: 'max', window: 'day', allowed_lateness: '2h' },
      ],
    });
    if (!catalog.ok) throw new Error('catalog');
    const meters = ['h', 'mi', 'd'].map((n) => catalog.catalog.get(n)!);
    const watermark = T('2026-11-22T11:10:00Z');
    const decide = createLatenessDecider(watermark);
    // Event times from 26 h before the watermark to 5 min after it, every 7 s 13 ms: windows of
    // every state (open, closed, final) for each meter, and window edges crossed many times.
    const seen = new Set<unknown>();
    let events = 0;
    for (let t = watermark - 26 * 3_600_000; t < watermark + 300_000; t += 7_013) {
      for (const m of meters) {
        for (const backfill of [false, true]) {
          const shared = decide(t, m, { backfill });
          expect(shared).toEqual(decideLateness(t, m, watermark, { backfill }));
          seen.add(shared);
          events += 1;
        }
      }
    }
    // One object per distinct (meter, window, backfill): 27 hours, 1,565 minutes, 2 days, twice.
    expect(seen.size).toBe(2 * (27 + 1_565 + 2));
    expect(events).toBeGreaterThan(80_000);
  });
});

describe('counters derived from window aggregates', () => {
  const agg = (aggregation: string, over: Partial<WindowAggregates> = {}): WindowAggregates => ({
    tenant: 't', customer: 'c', meter: 'm', windowStart: T('2026-11-22T10:00:00Z'), events: 3, sum: '0.300000000', max: '0.2', last: '0.1',
    uniqueCount: 2, aggregation, window: 'hour', allowedLatenessMs: 1_800_000, lastIngestedAt: 0, ...over,
  });
  it.each([
    ['sum', '0.3'],
    ['count', '3'],
    ['max', '0.2'],
    ['last', '0.1'],
    ['unique_count', '2'],
  ])('a %s meter reports %s', (aggregation, value) => {
    expect(counterFrom(agg(aggregation), null)).toMatchObject({ value, state: 'open', windowEnd: T('2026-11-22T11:00:00Z') });
  });
  it('versions grow with the events seen, then with the state', () => {
    expect(counterVersion(4, 'open')).toBeGreaterThan(counterVersion(3, 'final'));
    expect(counterVersion(3, 'closed')).toBeGreaterThan(counterVersion(3, 'open'));
  });
  it('advances a stored counter only forward', () => {
    const row = counterFrom(agg('sum'), T('2026-11-22T11:05:00Z'));
    expect(row.state).toBe('closed');
    expect(advanceState(row, T('2026-11-22T11:06:00Z'))).toBeNull();
    expect(advanceState(row, T('2026-11-22T11:30:00Z'))).toMatchObject({ state: 'final' });
    expect(advanceState(row, T('2026-11-22T10:00:00Z'))).toBeNull();
  });
});

describe('billing periods', () => {
  const { billingPeriodOf } = require('../../src/domain/windows') as typeof import('../../src/domain/windows');
  it('given anchor day 1, then the period is the calendar month', () => {
    expect(billingPeriodOf(T('2026-11-22T10:00:00Z'), 1)).toEqual({ start: T('2026-11-01T00:00:00Z'), end: T('2026-12-01T00:00:00Z') });
  });
  it('given anchor day 15, then the 14th belongs to the period that began last month, the 15th starts a new one', () => {
    expect(billingPeriodOf(T('2026-11-14T23:59:59Z'), 15)).toEqual({ start: T('2026-10-15T00:00:00Z'), end: T('2026-11-15T00:00:00Z') });
    expect(billingPeriodOf(T('2026-11-15T00:00:00Z'), 15)).toEqual({ start: T('2026-11-15T00:00:00Z'), end: T('2026-12-15T00:00:00Z') });
    expect(billingPeriodOf(T('2027-01-03T00:00:00Z'), 15)).toEqual({ start: T('2026-12-15T00:00:00Z'), end: T('2027-01-15T00:00:00Z') });
  });
});
