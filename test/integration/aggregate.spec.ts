import type { Kafka } from 'kafkajs';
import { createDecoder, createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createWatermarkStore } from '../../src/adapters/clickhouse/watermark-store';
import { queryUsage } from '../../src/adapters/clickhouse/usage-query';
import type { TestBroker } from '../helpers/kafka';
import { createPublisher, type Publisher } from '../../src/adapters/kafka/publisher';
import { formatDecimal, parseDecimal } from '../../src/domain/decimal';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog, type MeterCatalog } from '../../src/domain/meters';
import { seededRandom } from '../../src/domain/sample';
import type { UsageEvent } from '../../src/domain/usage-event';
import { windowOf } from '../../src/domain/windows';
import { rebuildCounters } from '../../src/pipeline/rebuild';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import { silentLogger } from '../../src/runtime/logger';
import { count, rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

const T = (iso: string) => Date.parse(iso);
const DAY = T('2026-11-20T00:00:00Z'); // two days before "now" in these tests: well inside every bound

function catalog(): MeterCatalog {
  const r = parseMeterCatalog({
    meters: [
      { name: 'm', aggregation: 'sum', window: 'hour', allowed_lateness: '30m' },
      { name: 's', aggregation: 'sum', window: 'minute', allowed_lateness: '1d' },
      { name: 'c', aggregation: 'count', window: 'minute', allowed_lateness: '1d' },
      { name: 'mx', aggregation: 'max', window: 'minute', allowed_lateness: '1d' },
      { name: 'l', aggregation: 'last', window: 'minute', allowed_lateness: '1d' },
      { name: 'u', aggregation: 'unique_count', unique_property: 'user', window: 'minute', allowed_lateness: '1d' },
    ],
  });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.catalog;
}

interface CounterView {
  value: string;
  events: number;
  version: number;
  state: string;
}

describe('aggregate: watermark-aware windowed counters', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let ch: TestClickHouse;
  let publisher: Publisher;
  const workers: IngestWorker[] = [];
  const meters = catalog();

  const counter = async (tenant: string, meter: string, windowStart: number): Promise<CounterView | undefined> => {
    const [r] = await rows<{ value: string; events: string | number; version: string | number; state: string }>(
      ch.client,
      `SELECT toString(value) AS value, events, version, state FROM ${ch.database}.usage_counters FINAL
       WHERE tenant = {t:String} AND meter = {m:String} AND window_start = fromUnixTimestamp64Milli({w:Int64})`,
      { t: tenant, m: meter, w: windowStart },
    );
    return r && { value: formatDecimal((parseDecimal(r.value) as { units: bigint }).units), events: Number(r.events), version: Number(r.version), state: r.state };
  };

  const startWorker = async (topic: string) => {
    const w = await startIngestWorker({
      kafka,
      topic,
      groupId: `agg-${topic}`,
      logger: silentLogger(),
      consumer: TEST_CONSUMER_TIMINGS,
      watermarkStore: createWatermarkStore(ch.client, ch.database),
      watermarks: { outOfOrdernessMs: 5_000, idleTimeoutMs: 60_000 },
      deps: {
        decoder: createDecoder({}),
        meters: () => meters,
        ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }),
        clock: Date.now,
        maxFutureSkewMs: 300_000,
      },
    });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    broker = await startTestBroker([
      { name: 'late.events', partitions: 1 },
      { name: 'types.events', partitions: 3 },
    ]);
    kafka = kafkaFor(broker);
    ch = await testClickHouse('aggregate');
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const w of workers) await w.stop();
    await publisher?.close();
    await ch?.close();
    await broker?.stop();
  });

  it('counts out-of-order events, updates a window for a late event within the lateness, and sets too-late events aside', async () => {
    publisher = await createPublisher({ kafka, topic: 'late.events', encoder: createSingleObjectEncoder() });
    const worker = await startWorker('late.events');
    let n = 0;
    const send = async (iso: string, value: string) => {
      n += 1;
      await publisher.publish([{ id: `late-${n}`, tenant: 'tl', customer: 'c1', meter: 'm', value, timestamp: T(iso), properties: {}, source: null }]);
      await waitFor(`event ${n} processed`, () => worker.totals.consumed >= n);
    };
    const w10 = T('2026-11-20T10:00:00Z');

    // Given events out of order within the 5 s bound, when stored, then all count in their windows.
    await send('2026-11-20T10:10:00Z', '1');
    await send('2026-11-20T10:20:00Z', '2');
    await send('2026-11-20T10:15:00Z', '4');
    await send('2026-11-20T11:00:02Z', '8');
    await send('2026-11-20T10:59:58Z', '16'); // 4 s behind the newest: within the bound, window 10 still open
    expect(await counter('tl', 'm', w10)).toMatchObject({ value: '23', events: 4, state: 'open' });
    expect(worker.totals.lateCounted).toBe(0);

    // When the watermark passes 11:00, then window 10 is closed.
    await send('2026-11-20T11:10:00Z', '32');
    await waitFor('window 10 closed', async () => (await counter('tl', 'm', w10))?.state === 'closed');
    const closed = (await counter('tl', 'm', w10))!;

    // Given a late event within the allowed lateness, then it updates the window with a new version.
    await send('2026-11-20T10:40:00Z', '64');
    const updated = (await counter('tl', 'm', w10))!;
    expect(updated).toMatchObject({ value: '87', events: 5, state: 'closed' });
    expect(updated.version).toBeGreaterThan(closed.version);
    expect(worker.totals.lateCounted).toBe(1);

    // When the watermark passes 11:30 (end + lateness), then window 10 is final…
    await send('2026-11-20T11:45:00Z', '128');
    await waitFor('window 10 final', async () => (await counter('tl', 'm', w10))?.state === 'final');

    // …and an event for it is too late: kept in late_events with a reason, not counted.
    await send('2026-11-20T10:50:00Z', '256');
    expect(await counter('tl', 'm', w10)).toMatchObject({ value: '87', events: 5, state: 'final' });
    expect(worker.totals.tooLate).toBe(1);
    const late = await rows<{ id: string; reason: string; value: string }>(ch.client, `SELECT id, reason, toString(value) AS value FROM ${ch.database}.late_events FINAL WHERE tenant = 'tl'`);
    expect(late).toEqual([{ id: `late-${n}`, value: '256', reason: expect.stringMatching(/was final: watermark 2026-11-20T11:44:55.000Z/) }]);
    // The decision is recorded with the event in the ledger, so a rebuild reproduces it.
    expect(await count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events WHERE tenant = 'tl' AND disposition = 'too_late'`)).toBe(1);

    // An event exactly at a window's end belongs to the next window.
    expect(await counter('tl', 'm', T('2026-11-20T11:00:00Z'))).toMatchObject({ value: '168', events: 3 });

    // A restarted worker resumes from the watermark saved when the last one stopped: window 10
    // is still final for it, so another event for it is too late, not counted.
    await worker.stop();
    const restarted = await startWorker('late.events');
    n += 1;
    await publisher.publish([{ id: `late-${n}`, tenant: 'tl', customer: 'c1', meter: 'm', value: '512', timestamp: T('2026-11-20T10:55:00Z'), properties: {}, source: null }]);
    await waitFor('event after the restart processed', () => restarted.totals.consumed >= 1);
    expect(restarted.totals).toMatchObject({ consumed: 1, accepted: 1, tooLate: 1, lateCounted: 0 });
    expect(await counter('tl', 'm', w10)).toMatchObject({ value: '87', events: 5, state: 'final' });
  });

  it('computes sum, count, max, last and unique_count exactly like an independent reference', async () => {
    const pub = await createPublisher({ kafka, topic: 'types.events', encoder: createSingleObjectEncoder() });
    const rnd = seededRandom(42);
    const events: UsageEvent[] = [];
    const names = ['s', 'c', 'mx', 'l', 'u'];
    for (let i = 0; i < 3000; i += 1) {
      events.push({
        id: `ty-${i}`,
        tenant: 'tt',
        customer: `c${Math.floor(rnd() * 3)}`,
        meter: names[i % names.length]!,
        // Thousandths from 0 to 2000, built exactly (no float arithmetic on values; negative values are dead letters).
        value: formatDecimal(BigInt(Math.floor(rnd() * 2_000_000)) * 1_000_000n),
        timestamp: DAY + Math.floor(rnd() * 10) * 60_000 + Math.floor(rnd() * 60_000),
        properties: { user: `u${Math.floor(rnd() * 40)}` },
        source: null,
      });
    }
    // The reference, computed here from the generated events only.
    const ref = new Map<string, { sum: bigint; count: number; max: bigint | null; last: { t: number; id: string; v: bigint } | null; users: Set<string> }>();
    for (const e of events) {
      const k = `${e.customer}/${e.meter}/${windowOf(e.timestamp, 'minute').start}`;
      const r = ref.get(k) ?? { sum: 0n, count: 0, max: null, last: null, users: new Set<string>() };
      const v = (parseDecimal(e.value) as { units: bigint }).units;
      r.sum += v;
      r.count += 1;
      r.max = r.max === null || v > r.max ? v : r.max;
      if (r.last === null || e.timestamp > r.last.t || (e.timestamp === r.last.t && e.id > r.last.id)) r.last = { t: e.timestamp, id: e.id, v };
      r.users.add(e.properties.user!);
      ref.set(k, r);
    }
    await startWorker('types.events');
    await pub.publish(events);
    await pub.close();
    await waitFor('all events counted', async () => (await count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events WHERE tenant = 'tt'`)) === events.length, 60_000);
    await waitFor('counters caught up', async () =>
      (await count(ch.client, `SELECT sum(events) AS c FROM ${ch.database}.usage_counters FINAL WHERE tenant = 'tt'`)) === events.length,
    );
    const got = await rows<{ customer: string; meter: string; ws: string; value: string }>(
      ch.client,
      `SELECT customer, meter, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(value) AS value FROM ${ch.database}.usage_counters FINAL WHERE tenant = 'tt'`,
    );
    expect(got).toHaveLength(ref.size);
    for (const g of got) {
      const r = ref.get(`${g.customer}/${g.meter}/${g.ws}`)!;
      const expected = { s: formatDecimal(r.sum), c: String(r.count), mx: formatDecimal(r.max!), l: formatDecimal(r.last!.v), u: String(r.users.size) }[g.meter];
      expect({ key: `${g.customer}/${g.meter}/${g.ws}`, value: formatDecimal((parseDecimal(g.value) as { units: bigint }).units) }).toEqual({
        key: `${g.customer}/${g.meter}/${g.ws}`,
        value: expected,
      });
    }

    // The same numbers through the query path, rolled up per day: unique counts are re-derived,
    // not summed, and the state is the least settled of the day's counters. Workers stop first,
    // so the settle timer cannot move a state between the two reads.
    for (const w of workers.splice(0)) await w.stop();
    const perDay = await queryUsage(ch.client, ch.database, { tenant: 'tt', customer: 'c1', meter: 'u', from: DAY, to: DAY + 86_400_000, window: 'day' });
    const users = new Set(events.filter((e) => e.customer === 'c1' && e.meter === 'u').map((e) => e.properties.user));
    const states = (await rows<{ state: string }>(ch.client, `SELECT state FROM ${ch.database}.usage_counters FINAL WHERE tenant = 'tt' AND customer = 'c1' AND meter = 'u'`)).map((r) => r.state);
    const leastSettled = ['open', 'closed', 'final'].find((st) => states.includes(st));
    expect(perDay).toEqual([
      {
        tenant: 'tt', customer: 'c1', meter: 'u', window_start: '2026-11-20T00:00:00.000Z', window_end: '2026-11-21T00:00:00.000Z',
        value: String(users.size), events: events.filter((e) => e.customer === 'c1' && e.meter === 'u').length, state: leastSettled,
      },
    ]);
  });

  it('serves every counter from the ledger: the projection-served view equals a recomputation from the raw rows, and rebuild announces every stream', async () => {
    const snapshot = (settings = '') =>
      rows<{ k: string; value: string; events: string | number }>(
        ch.client,
        `SELECT concat(tenant, '/', customer, '/', meter, '/', toString(window_start)) AS k, toString(value) AS value, events
         FROM ${ch.database}.usage_counters ORDER BY k ${settings}`,
      );
    const served = await snapshot();
    expect(served.length).toBeGreaterThan(100);
    // The same counters with projections off: every aggregate recomputed from the events themselves.
    expect(await snapshot('SETTINGS optimize_use_projections = 0')).toEqual(served);
    const windows = await count(ch.client, `SELECT count() AS c FROM (SELECT DISTINCT tenant, customer, meter, window_start FROM ${ch.database}.usage_events WHERE disposition = 'counted')`);
    const streams = await count(ch.client, `SELECT count() AS c FROM (SELECT DISTINCT tenant, customer, meter FROM ${ch.database}.usage_events WHERE disposition = 'counted')`);
    const before = await count(ch.client, `SELECT count() AS c FROM ${ch.database}.stream_changes`);
    const summary = await rebuildCounters(ch.client, ch.database, { from: 0, to: Date.now() + 86_400_000, now: Date.now() });
    expect(summary).toEqual({ windows, streams });
    expect(await count(ch.client, `SELECT count() AS c FROM ${ch.database}.stream_changes`)).toBe(before + streams);
    // Nothing was written over: the counters are what they were.
    expect(await snapshot()).toEqual(served);
  });

  it('sums 1,000,000 values of 0.1 to exactly 100000', async () => {
    const meter = meters.get('s')!;
    const ledger = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 });
    const ts = DAY + 30_000;
    for (let chunk = 0; chunk < 10; chunk += 1) {
      const batch: NewEvent[] = [];
      for (let i = 0; i < 100_000; i += 1) {
        const event: UsageEvent = { id: `tenth-${chunk}-${i}`, tenant: 'million', customer: 'c', meter: 's', value: '0.1', timestamp: ts, properties: {}, source: null };
        batch.push({
          candidate: candidateOf({ topic: 'direct', partition: 0, offset: String(chunk * 100_000 + i) }, event, meter),
          lateness: decideLateness(ts, meter, null),
        });
      }
      await ledger.insertNew(batch, Date.now());
    }
    const [row] = await rows<{ value: string; events: string | number }>(
      ch.client,
      `SELECT toString(value) AS value, events FROM ${ch.database}.usage_counters WHERE tenant = 'million' AND window_start = fromUnixTimestamp64Milli({w:Int64})`,
      { w: windowOf(ts, 'minute').start },
    );
    expect({ value: formatDecimal((parseDecimal(row!.value) as { units: bigint }).units), events: Number(row!.events) }).toEqual({ value: '100000', events: 1_000_000 });
  });

  it('computes window states where they are read, from the persisted watermark: nothing is rewritten as it moves', async () => {
    const HOUR = 3_600_000;
    const base = DAY + 10 * 86_400_000; // a day of its own: no other test's windows around it
    const meter = meters.get('m')!; // hourly, 30 minutes of allowed lateness
    const event: UsageEvent = { id: 'state-1', tenant: 'states', customer: 'c', meter: 'm', value: '2.5', timestamp: base + 60_000, properties: {}, source: null };
    await createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }).insertNew(
      [{ candidate: candidateOf({ topic: 'states', partition: 0, offset: '0' }, event, meter), lateness: decideLateness(event.timestamp, meter, null) }],
      Date.now(),
    );
    const watermarks = createWatermarkStore(ch.client, ch.database);
    const query = async () => (await queryUsage(ch.client, ch.database, { tenant: 'states', from: base, to: base + HOUR })).map((r) => `${r.value}:${r.state}`);
    // Workers of the earlier tests saved watermarks far before this day: the window is open.
    expect(await counter('states', 'm', base)).toMatchObject({ value: '2.5', events: 1, state: 'open' });
    expect(await query()).toEqual(['2.5:open']);
    const parts = () => count(ch.client, `SELECT count() AS c FROM system.parts WHERE database = '${ch.database}' AND table = 'usage_events' AND active`);
    const partsBefore = await parts();
    await watermarks.save('states', new Map(), base + HOUR + 60_000, Date.now());
    expect(await counter('states', 'm', base)).toMatchObject({ value: '2.5', events: 1, state: 'closed' });
    expect(await query()).toEqual(['2.5:closed']);
    await watermarks.save('states', new Map(), base + HOUR + 31 * 60_000, Date.now());
    expect(await counter('states', 'm', base)).toMatchObject({ state: 'final' });
    expect(await query()).toEqual(['2.5:final']);
    // A lower watermark saved later (a restarted worker that lags) does not reopen the window.
    await watermarks.save('states', new Map(), base, Date.now());
    expect(await query()).toEqual(['2.5:final']);
    expect(await watermarks.loadWatermark()).toBe(base + HOUR + 31 * 60_000);
    // No ledger row or part was written for any of it.
    expect(await parts()).toBe(partsBefore);
  });
});
