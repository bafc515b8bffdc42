import type { LedgerStore, NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { backfillWarnings, createBackfillAgeReport } from '../../src/domain/backfill-age';
import { candidateOf, dedupeKey, type Candidate, type StoredKey } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { createDryRunLedger } from '../../src/pipeline/dry-run-ledger';
import { inEventTimeRange } from '../../src/pipeline/ingest-batch';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1h' }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meter = parsed.catalog.get('tokens')!;

describe('backfilled events and lateness', () => {
  const t = Date.parse('2026-10-01T10:30:00Z');
  const watermark = t + 30 * DAY;
  it('a plain event for a final window is too late; a backfilled one is counted and marked late', () => {
    expect(decideLateness(t, meter, watermark).disposition).toBe('too_late');
    expect(decideLateness(t, meter, watermark, { backfill: true })).toMatchObject({ disposition: 'counted', late: true });
  });
  it('a backfilled event for an open window is counted and not late', () => {
    expect(decideLateness(t, meter, t, { backfill: true })).toMatchObject({ disposition: 'counted', late: false });
  });
});

describe('event-time range of a replay', () => {
  it('is half-open [from, to), and null bounds are open', () => {
    expect(inEventTimeRange(10, { from: 10, to: 20 })).toBe(true);
    expect(inEventTimeRange(20, { from: 10, to: 20 })).toBe(false);
    expect(inEventTimeRange(9, { from: 10, to: null })).toBe(false);
    expect(inEventTimeRange(-5, { from: null, to: null })).toBe(true);
    expect(inEventTimeRange(5, undefined)).toBe(true);
  });
});

describe('backfill age report', () => {
  const now = Date.parse('2026-11-22T00:00:00Z');
  it('counts events past the dedupe window and past Stripe’s 35 days, with their first lines', () => {
    const r = createBackfillAgeReport(now, 40 * DAY, 2);
    r.add(now - 10 * DAY, 1);
    r.add(now - 36 * DAY, 2); // past Stripe only
    r.add(now - 41 * DAY, 3); // past both
    r.add(now - 50 * DAY, 4); // past both
    r.add(now - 60 * DAY, 5); // past both
    const report = r.report();
    expect(report.olderThanStripeLimit).toEqual({ count: 4, firstLines: [2, 3] });
    expect(report.olderThanDedupeWindow).toEqual({ count: 3, firstLines: [3, 4] });
    expect(report.oldest).toBe(new Date(now - 60 * DAY).toISOString());
    const warnings = backfillWarnings(report, 40);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/4 events are older than Stripe's 35 days \(lines 2, 3, …\).*cannot be billed through meter events/);
    expect(warnings[1]).toMatch(/3 events are older than the dedupe window of 40 days/);
  });
  it('says nothing about recent history', () => {
    const r = createBackfillAgeReport(now, 35 * DAY);
    r.add(now - 34 * DAY, 1);
    expect(backfillWarnings(r.report(), 35)).toEqual([]);
  });
});

describe('dry-run ledger', () => {
  const ev = (id: string, value: string, t: number, customer = 'c'): UsageEvent => ({ id, tenant: 't', customer, meter: 'tokens', value, timestamp: t, properties: {}, source: null });
  const cand = (e: UsageEvent, offset: number): Candidate => (candidateOf({ topic: 'x', partition: 0, offset: String(offset) }, e, meter));
  const newEvent = (c: Candidate, watermark: number | null = null): NewEvent => ({ candidate: c, lateness: decideLateness(c.event.timestamp, meter, watermark) });
  const t0 = Date.parse('2026-11-20T10:00:00Z');

  function realLedger(stored: StoredKey[]): LedgerStore & { writes: number } {
    const byKey = new Map(stored.map((s) => [dedupeKey(s.tenant, s.id), s]));
    const ledger = {
      writes: 0,
      lookup: async (cs: readonly Candidate[]) => new Map(cs.flatMap((c) => (byKey.has(dedupeKey(c.event.tenant, c.event.id)) ? [[dedupeKey(c.event.tenant, c.event.id), byKey.get(dedupeKey(c.event.tenant, c.event.id))!] as const] : []))),
      insertNew: async () => void (ledger.writes += 1),
      insertLate: async () => void (ledger.writes += 1),
      insertDuplicates: async () => void (ledger.writes += 1),
      insertRejections: async () => void (ledger.writes += 1),
      recordChanges: async () => undefined,
    };
    return ledger;
  }

  it('finds what it would have stored in later lookups, writes nothing, and sums the counters that would move', async () => {
    const real = realLedger([{ tenant: 't', id: 'old', bodyHash: 'h', topic: 'x', partition: 0, offset: '0' }]);
    const dry = createDryRunLedger(real);
    const a = cand(ev('a', '1.5', t0 + 60_000), 1);
    const b = cand(ev('b', '2.25', t0 + 120_000), 2);
    const c = cand(ev('c', '4', t0 + HOUR + 1, 'd'), 3);
    await dry.insertNew([newEvent(a), newEvent(b), newEvent(c)], 0);
    await dry.insertDuplicates([], 0);
    await dry.insertRejections([], 0);
    await dry.insertLate([], null, 0);
    expect(real.writes).toBe(0);

    const found = await dry.lookup([cand(ev('a', '1.5', t0 + 60_000), 9), cand(ev('old', '1', t0), 10), cand(ev('zzz', '1', t0), 11)]);
    expect([...found.keys()].sort()).toEqual([dedupeKey('t', 'a'), dedupeKey('t', 'old')].sort());
    expect(found.get(dedupeKey('t', 'a'))).toMatchObject({ offset: '1' });

    expect(dry.counterMoves()).toEqual([
      { tenant: 't', customer: 'c', meter: 'tokens', windowStart: t0, aggregation: 'sum', addedEvents: 2, addedValue: '3.75' },
      { tenant: 't', customer: 'd', meter: 'tokens', windowStart: t0 + HOUR, aggregation: 'sum', addedEvents: 1, addedValue: '4' },
    ]);
  });

  it('does not count too-late events as moving a counter, yet would store them', async () => {
    const dry = createDryRunLedger(realLedger([]));
    const late = cand(ev('late', '9', t0), 1);
    await dry.insertNew([newEvent(late, t0 + 10 * DAY)], 0);
    expect(dry.counterMoves()).toEqual([]);
    expect([...(await dry.lookup([cand(ev('late', '9', t0), 2)])).keys()]).toEqual([dedupeKey('t', 'late')]);
  });
});
