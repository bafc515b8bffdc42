/**
 * The ledger's rows travel as TabSeparated bytes: embedded, through chdb's raw insert; against a
 * server, over HTTP. Hostile values (tabs, newlines, backslashes, quotes, unicode, empty and huge
 * maps, Decimal(38, 9) edges, DateTime64 precision) are written through the real ledger store
 * and read back from real ClickHouse: every value must come back exactly as it went in.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { listRejected, markRedriven } from '../../src/adapters/clickhouse/rejected-store';
import { rawTsvInsertOf } from '../../src/adapters/clickhouse/tsv-insert';
import { parseDecimal } from '../../src/domain/decimal';
import { candidateOf, decideDedupe, type Candidate, type Rejection } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { testClickHouse, uniqueDatabase, type TestClickHouse } from '../helpers/clickhouse';
import { devClickHouseDatabase } from '../helpers/dev-clickhouse';

const HOSTILE = [
  'plain',
  'tab\there',
  'new\nline',
  'carriage\rreturn',
  'back\\slash',
  'trailing backslash\\',
  '\\N',
  '\\t not a tab',
  "it's 'quoted'",
  '"double"',
  'nul\u0000byte',
  'bell\b feed\f',
  'ünïcødé — 日本語 🚀',
  "'; DROP TABLE t; --",
  "{'not':'a map'}",
  '',
];
const VALUES = ['0', '0.000000001', '1', '0.5', '123456789.123456789', '99999999999999999999.999999999', '99999999999999999999'];
const TIMES = [Date.UTC(2026, 10, 29, 0, 0, 0, 0), Date.UTC(2026, 10, 29, 7, 45, 12, 1), Date.UTC(2026, 10, 29, 23, 59, 59, 999), Date.UTC(2000, 0, 1, 0, 0, 0, 0)];
const HUGE_MAP = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}\t'\\`, `${HOSTILE[i % HOSTILE.length]}${'é\n\\'.repeat(300)}`.slice(0, 1024)]));

const parsed = parseMeterCatalog({
  meters: [
    { name: 'api_calls', aggregation: 'sum', allowed_lateness: '1h' },
    { name: 'users', aggregation: 'unique_count', unique_property: "who's\tthere" },
  ],
});
if (!parsed.ok) throw new Error('bad test catalog');
const meters = parsed.catalog;

/** Events whose every text column carries hostile values, with every Decimal and time edge. */
function hostileEvents(): Candidate[] {
  return HOSTILE.map((s, i) => {
    const meter = i % 2 === 0 ? meters.get('api_calls')! : meters.get('users')!;
    const event: UsageEvent = {
      id: `id-${i}-${s}`,
      tenant: `tenant ${s}`,
      customer: `customer\\${s}`,
      meter: meter.name,
      value: VALUES[i % VALUES.length]!,
      timestamp: TIMES[i % TIMES.length]!,
      properties: i === 0 ? {} : i === 1 ? HUGE_MAP : { [s || 'empty']: s, "who's\tthere": `v${s}` },
      source: i % 3 === 0 ? null : s,
    };
    return candidateOf({ topic: 'usage.events', partition: i % 4, offset: String(2n ** 62n + BigInt(i)) }, event, meter);
  });
}

interface StoredEvent {
  tenant: string;
  id: string;
  customer: string;
  meter: string;
  value: string;
  event_ms: string;
  properties: Record<string, string>;
  source: string | null;
  body_hash: string;
  meter_unique_property: string;
  window_ms: string;
  disposition: string;
  partition: number;
  offset: string;
  ingested_us: string;
}

async function roundTrip(client: ClickHouseClient, database: string): Promise<void> {
  const writer = "worker\t'ü";
  const ledger = createLedgerStore(client, database, { dedupeWindowMs: 35 * 86_400_000, ingestedBy: writer });
  const candidates = hostileEvents();
  // The last window the watermark made final holds the oldest event: it is stored as too late.
  const watermark = Date.UTC(2026, 10, 29, 12);
  const news: NewEvent[] = candidates.map((c) => ({ candidate: c, lateness: decideLateness(c.event.timestamp, c.meter, watermark) }));
  const ingestedAt = Date.UTC(2026, 10, 29, 8, 0, 0, 123);
  await ledger.insertNew(news, ingestedAt);
  await ledger.insertLate(news, watermark, ingestedAt);

  const stored = (
    await (
      await client.query({
        query: `SELECT tenant, id, customer, meter, toString(value) AS value, toString(toUnixTimestamp64Milli(event_time)) AS event_ms,
                       properties, source, body_hash, meter_unique_property, toString(toUnixTimestamp64Milli(window_start)) AS window_ms,
                       disposition, partition, toString(offset) AS offset, toString(toUnixTimestamp64Micro(ingested_at)) AS ingested_us
                FROM ${database}.usage_events ORDER BY offset`,
        format: 'JSONEachRow',
      })
    ).json<StoredEvent>()
  );
  expect(stored).toEqual(
    news.map(({ candidate: c, lateness }) => ({
      tenant: c.event.tenant,
      id: c.event.id,
      customer: c.event.customer,
      meter: c.event.meter,
      value: c.event.value,
      event_ms: String(c.event.timestamp),
      properties: c.event.properties,
      source: c.event.source,
      body_hash: c.bodyHash,
      meter_unique_property: c.meter.uniqueProperty ?? '',
      window_ms: String(lateness.window.start),
      disposition: lateness.disposition,
      partition: c.ref.partition,
      offset: c.ref.offset,
      ingested_us: String(ingestedAt * 1000),
    })),
  );
  // The same INSERT recorded each stream's windows in the change record, for the pusher (the
  // ledger's view): one row per stream, stamped with the rows' ingested_at and their writer.
  const expectedChanges = new Map<string, { tenant: string; customer: string; meter: string; oldest: string; newest: string; at: string; by: string }>();
  for (const { candidate: c, lateness } of news) {
    const key = JSON.stringify([c.event.tenant, c.event.customer, c.event.meter]);
    const known = expectedChanges.get(key);
    const ws = lateness.window.start;
    expectedChanges.set(key, {
      tenant: c.event.tenant,
      customer: c.event.customer,
      meter: c.event.meter,
      oldest: String(Math.min(ws, Number(known?.oldest ?? ws))),
      newest: String(Math.max(ws, Number(known?.newest ?? ws))),
      at: String(ingestedAt * 1000),
      by: writer,
    });
  }
  const changes = await (
    await client.query({
      query: `SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(oldest_window_start)) AS oldest,
                     toString(toUnixTimestamp64Milli(newest_window_start)) AS newest,
                     toString(toUnixTimestamp64Micro(changed_at)) AS at, written_by AS by
              FROM ${database}.stream_changes`,
      format: 'JSONEachRow',
    })
  ).json<{ tenant: string; customer: string; meter: string }>();
  const byStream = (a: { tenant: string; customer: string; meter: string }, b: { tenant: string; customer: string; meter: string }) =>
    a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : a.customer < b.customer ? -1 : a.customer > b.customer ? 1 : a.meter < b.meter ? -1 : a.meter > b.meter ? 1 : 0;
  expect([...changes].sort(byStream)).toEqual([...expectedChanges.values()].sort(byStream));
  expect(changes.length).toBeGreaterThan(1);

  // The projections were written with the rows: the per-window sum is exact, to the nano-unit.
  const [total] = await (
    await client.query({ query: `SELECT toString(sum(value)) AS s, count() AS n FROM ${database}.usage_events WHERE meter = 'api_calls'`, format: 'JSONEachRow' })
  ).json<{ s: string; n: string | number }>();
  const units = (v: string) => {
    const d = parseDecimal(v);
    if (!d.ok) throw new Error(d.reason);
    return d.units;
  };
  const apiCalls = news.filter((n) => n.candidate.meter.name === 'api_calls');
  expect(Number(total!.n)).toBe(apiCalls.length);
  expect(units(total!.s)).toBe(apiCalls.reduce((a, n) => a + units(n.candidate.event.value), 0n));

  const tooLate = news.filter((n) => n.lateness.disposition === 'too_late');
  expect(tooLate.length).toBeGreaterThan(0);
  const late = await (
    await client.query({
      query: `SELECT tenant, id, toString(value) AS value, reason, toString(toUnixTimestamp64Milli(watermark)) AS wm FROM ${database}.late_events ORDER BY offset`,
      format: 'JSONEachRow',
    })
  ).json<{ tenant: string; id: string; value: string; reason: string; wm: string }>();
  expect(late).toEqual(
    tooLate.map((n) => ({ tenant: n.candidate.event.tenant, id: n.candidate.event.id, value: n.candidate.event.value, reason: n.lateness.disposition === 'too_late' ? n.lateness.reason : '', wm: String(watermark) })),
  );

  // The dedupe lookup finds every hostile key it stored, and copies are recorded with their text.
  const copies = candidates.map((c, i) => ({
    ...c,
    ref: { ...c.ref, offset: String(i) },
    ...(i % 2 === 0 ? {} : { event: { ...c.event, value: '7' }, bodyHash: `other-${i}` }),
  }));
  const found = await ledger.lookup(copies);
  expect(found.size).toBe(candidates.length);
  const decisions = decideDedupe(copies, found);
  expect(decisions.map((d) => d.kind)).toEqual(copies.map((_, i) => (i % 2 === 0 ? 'duplicate' : 'conflict')));
  await ledger.insertDuplicates(decisions, ingestedAt);
  const dups = await (
    await client.query({ query: `SELECT kind, tenant, id, event, original_body_hash FROM ${database}.duplicate_events ORDER BY offset`, format: 'JSONEachRow' })
  ).json<{ kind: string; tenant: string; id: string; event: string; original_body_hash: string }>();
  expect(dups).toEqual(
    decisions.map((d) => ({
      kind: d.kind,
      tenant: d.candidate.event.tenant,
      id: d.candidate.event.id,
      event: d.kind === 'conflict' ? JSON.stringify(d.candidate.event) : '',
      original_body_hash: candidates.find((c) => c.event.id === d.candidate.event.id)!.bodyHash,
    })),
  );

  // Dead letters keep their raw bytes, key and reason exactly; a redrive writes a new version.
  const rejections: Rejection[] = HOSTILE.map((s, i) => ({
    ref: { topic: 'usage.events', partition: 0, offset: String(1000 + i) },
    code: 'invalid_event',
    reason: `bad: ${s}`,
    key: i % 2 === 0 ? null : Buffer.from(s, 'utf8'),
    raw: i % 3 === 0 ? null : Buffer.from([0, 9, 10, 13, 92, 39, 255, i]),
    tenant: i % 2 === 0 ? s : null,
    eventId: i % 2 === 1 ? s : null,
  }));
  await ledger.insertRejections(rejections, ingestedAt);
  const listed = await listRejected(client, database);
  expect(listed.map((r) => ({ reason: r.reason, raw: r.raw, key: r.key, tenant: r.tenant, eventId: r.eventId, status: r.status }))).toEqual(
    rejections.map((r) => ({ reason: r.reason, raw: r.raw && r.raw.length > 0 ? r.raw : null, key: r.key, tenant: r.tenant, eventId: r.eventId, status: 'rejected' })),
  );
  await markRedriven(client, database, listed.slice(0, 3), ingestedAt + 1);
  expect((await listRejected(client, database, { status: 'redriven' })).map((r) => r.reason)).toEqual(rejections.slice(0, 3).map((r) => r.reason));
}

describe('ledger rows as TabSeparated bytes, read back from real ClickHouse', () => {
  describe('embedded (chdb raw insert)', () => {
    let ch: TestClickHouse;
    beforeAll(async () => {
      ch = await testClickHouse('ledger_tsv');
    });
    afterAll(async () => ch?.close());

    it('takes the raw zero-copy path, not the client SQL string', () => {
      expect(rawTsvInsertOf(ch.client)).toBeDefined();
    });

    it('stores every hostile value, decimal edge and timestamp exactly as it was decided', async () => {
      await roundTrip(ch.client, ch.database);
    });
  });

  describe('served over HTTP (dev-clickhouse, TabSeparated body)', () => {
    let served: Awaited<ReturnType<typeof devClickHouseDatabase>>;
    let client: ClickHouseClient;
    const database = uniqueDatabase('ledger_tsv_http');
    beforeAll(async () => {
      served = await devClickHouseDatabase(database);
      client = served.client;
    }, 90_000);
    afterAll(async () => served?.close());

    it('sends the same bytes over HTTP (no raw path) and reads back every value exactly', async () => {
      expect(rawTsvInsertOf(client)).toBeUndefined();
      await roundTrip(client, database);
    }, 60_000);
  });
});
