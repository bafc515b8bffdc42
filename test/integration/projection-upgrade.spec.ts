/**
 * A ledger written by an older version: its per-window projections compute `last` for every row
 * (argMax over a tuple, the slow path) and lack the spans' latest window (LATEST_WINDOW), and
 * its older parts lack by_ingested. Start-up's
 * migrations must replace the stale projections and rewrite every old part with all three, so
 * reads are served by projections again, with the same totals; and a second start-up must change
 * nothing more. The same for the ledger's merge base (schema/merge-settings.ts), which older
 * ledgers lack.
 */
import { migrate } from '../../src/adapters/clickhouse/migrations';
import { LEDGER_TABLES } from '../../src/adapters/clickhouse/schema/ledger-tables';
import { LEDGER_MERGE_SELECTOR_BASE, setsTo } from '../../src/adapters/clickhouse/schema/merge-settings';
import { definitionIn } from '../../src/adapters/clickhouse/schema/projection-upkeep';
import { LATEST_WINDOW, SELECT_LATEST_WINDOW, SELECT_WINDOW_AGGREGATES, WINDOW_AGGREGATES } from '../../src/adapters/clickhouse/window-aggregates';
import { rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { waitFor } from '../helpers/wait';

/** The per-window aggregates as versions before argMaxIf wrote them. */
const OLD_LAST = 'argMax(value, (event_time, id))';
const PROJECTIONS = ['by_window', 'by_window_time', 'by_ingested'];

describe('per-window projections of an older ledger', () => {
  let ch: TestClickHouse;
  afterAll(async () => ch?.close());

  const createTable = async () =>
    (await rows<{ q: string }>(ch.client, `SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = 'usage_events'`, { db: ch.database }))[0]!.q;
  const partProjections = async () =>
    rows<{ name: string; projections: string[] }>(ch.client, `SELECT name, projections FROM system.parts WHERE database = {db:String} AND table = 'usage_events' AND active`, {
      db: ch.database,
    });
  const totals = async (settings = '') =>
    rows<{ meter: string; events: number; sum_v: string; last_v: string }>(
      ch.client,
      `SELECT meter, ${SELECT_WINDOW_AGGREGATES} FROM ${ch.database}.usage_events WHERE disposition = 'counted'
       GROUP BY tenant, customer, meter, window_start ORDER BY meter, window_start${settings}`,
    );
  // A pusher's read of stream spans (span-reads.ts): each span's aggregates and its latest window.
  const spans = async (settings = '') =>
    rows<{ meter: string; events: number; latest_ws: string }>(
      ch.client,
      `SELECT meter, ${SELECT_WINDOW_AGGREGATES}, ${SELECT_LATEST_WINDOW} FROM ${ch.database}.usage_events WHERE disposition = 'counted'
       GROUP BY tenant, customer, meter ORDER BY meter${settings}`,
    );
  const insert = async (values: string) =>
    ch.client.command({
      query: `INSERT INTO ${ch.database}.usage_events (tenant, id, customer, meter, value, event_time, body_hash, meter_aggregation, meter_window,
                meter_allowed_lateness_ms, meter_definition_hash, topic, partition, offset, ingested_at, window_start) VALUES ${values}`,
    });

  it('replaces stale projections, rewrites old parts with every projection, and keeps the totals', async () => {
    ch = await testClickHouse('projection_upgrade');
    const db = ch.database;
    // The older version's ledger: its definitions of both per-window projections, no by_ingested.
    for (const p of ['by_window', 'by_window_time']) {
      const add = LEDGER_TABLES.find((m) => m.name === `usage_events.projection_${p}`)!.sql(db);
      await ch.client.command({ query: `ALTER TABLE ${db}.usage_events DROP PROJECTION ${p}` });
      await ch.client.command({ query: add.replace(WINDOW_AGGREGATES.last, OLD_LAST).replace(`, ${LATEST_WINDOW}`, '') });
    }
    await ch.client.command({ query: `ALTER TABLE ${db}.usage_events DROP PROJECTION by_ingested` });
    // Two parts: a 'last' meter whose latest event (by event time) was written first, and a sum
    // over two windows (10:00 and 11:00).
    const row = (id: string, meter: string, aggregation: string, value: string, t: string, offset: number) =>
      `('t', '${id}', 'c1', '${meter}', ${value}, '${t}', 'h', '${aggregation}', 'hour', 0, 'd', 'usage.events', 0, ${offset}, now64(6), toStartOfHour(toDateTime64('${t}', 3, 'UTC')))`;
    await insert([row('a', 'gauge', 'last', '7', '2026-11-30 10:50:00.000', 1), row('s1', 'tokens', 'sum', '2.5', '2026-11-30 10:10:00.000', 2)].join(', '));
    await insert([row('b', 'gauge', 'last', '9', '2026-11-30 10:20:00.000', 3), row('s2', 'tokens', 'sum', '4', '2026-11-30 11:30:00.000', 4)].join(', '));
    expect(definitionIn(await createTable(), 'by_window')).toContain(OLD_LAST);
    for (const p of ['by_window', 'by_window_time']) expect(definitionIn(await createTable(), p)).not.toContain(LATEST_WINDOW);
    // The old projections cannot serve today's aggregates: such a read would scan every event.
    await expect(totals('\n       SETTINGS force_optimize_projection = 1')).rejects.toThrow(/projection/i);
    await expect(spans('\n       SETTINGS force_optimize_projection = 1')).rejects.toThrow(/projection/i);

    const applied = await migrate(ch.client, db);
    expect(applied).toEqual(
      expect.arrayContaining([
        'usage_events.projection_by_window.drop_if_stale',
        'usage_events.projection_by_window_time.drop_if_stale',
        ...PROJECTIONS.map((p) => `usage_events.projection_${p}.materialize`),
      ]),
    );
    const definition = await createTable();
    for (const p of ['by_window', 'by_window_time']) {
      expect(definitionIn(definition, p)).toContain(WINDOW_AGGREGATES.last);
      expect(definitionIn(definition, p)).not.toContain(OLD_LAST);
    }
    for (const p of ['by_window', 'by_window_time']) expect(definitionIn(definition, p)).toContain(LATEST_WINDOW);

    // The background rewrite gives every part all three projections.
    await waitFor('every part rewritten with the three projections', async () => {
      const parts = await partProjections();
      return parts.length > 0 && parts.every((part) => PROJECTIONS.every((p) => part.projections.includes(p)));
    }, 60_000);
    const served = await totals('\n       SETTINGS force_optimize_projection = 1');
    expect(served).toEqual(await totals('\n       SETTINGS optimize_use_projections = 0'));
    expect(served.map((r) => [r.meter, Number(r.events), r.sum_v, r.last_v])).toEqual([
      ['gauge', 2, '16', '7'],
      ['tokens', 1, '2.5', '0'],
      ['tokens', 1, '4', '0'],
    ]);
    // The spans' latest windows too: gauge's two events share 10:00; tokens' latest is 11:00.
    const spanRows = await spans('\n       SETTINGS force_optimize_projection = 1');
    expect(spanRows).toEqual(await spans('\n       SETTINGS optimize_use_projections = 0'));
    expect(spanRows.map((r) => [r.meter, Number(r.events), r.latest_ws])).toEqual([
      ['gauge', 2, String(Date.UTC(2026, 10, 30, 10))],
      ['tokens', 2, String(Date.UTC(2026, 10, 30, 11))],
    ]);

    // A second start-up finds nothing stale and nothing to rewrite.
    const again = await migrate(ch.client, db);
    expect(again.filter((m) => /drop_if_stale|materialize/.test(m))).toEqual([]);
  }, 90_000);

  it("gives an older ledger the ledger's merge base, once", async () => {
    const db = ch.database;
    expect(setsTo(await createTable(), 'merge_selector_base', LEDGER_MERGE_SELECTOR_BASE)).toBe(true);
    // A ledger of a version before the setting: ClickHouse's default merges.
    await ch.client.command({ query: `ALTER TABLE ${db}.usage_events RESET SETTING merge_selector_base` });
    expect(await createTable()).not.toContain('merge_selector_base');
    expect(await migrate(ch.client, db)).toContain('usage_events.merge_selector_base');
    expect(setsTo(await createTable(), 'merge_selector_base', LEDGER_MERGE_SELECTOR_BASE)).toBe(true);
    // Set once: later start-ups leave the table's metadata alone.
    expect(await migrate(ch.client, db)).not.toContain('usage_events.merge_selector_base');
  });
});
