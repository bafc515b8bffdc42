import os from 'node:os';
import { LEDGER_TABLES } from '../src/adapters/clickhouse/schema/ledger-tables';
import { WINDOW_AGGREGATES } from '../src/adapters/clickhouse/window-aggregates';
import { withScratchLedger } from './scratch-ledger';

const ROWS_PER_UNIT = 25_000;
/** `last` as the per-window projections kept it before argMaxIf (BENCHMARKS.md, twelfth session). */
const LAST_BEFORE = 'argMax(value, (event_time, id))';

/**
 * `npm run bench -- --ledger-insert [UNITS] [--without PROJECTION]… [--last-before]`: what ledger
 * INSERTs cost the embedded engine. In a fresh embedded ledger (the real migrations), UNITS
 * INSERTs of 25,000 rows shaped like the benchmark's (3 tenants, 10,000 customers, its five
 * meters, event times over one hour, generated in SQL the same way in every variant), then
 * `OPTIMIZE … FINAL`; the process's CPU time over all of it (the engine runs in process, on
 * every thread it uses), the INSERTs' wall time and the ledger's size on disk. `--without`
 * drops a projection first, to show its share; `--last-before` recreates the per-window
 * projections with the `last` aggregate of before. Prints one JSON line.
 */
export async function measureLedgerInsert(argv: readonly string[]): Promise<number> {
  const units = Number(argv.find((a) => /^\d+$/.test(a)) ?? 40);
  const without = argv.flatMap((a, i) => (argv[i - 1] === '--without' ? [a] : []));
  const lastBefore = argv.includes('--last-before');
  await withScratchLedger('ledger-insert', async ({ ch, db }) => {
    for (const projection of without) await ch.command({ query: `ALTER TABLE ${db}.usage_events DROP PROJECTION ${projection}` });
    if (lastBefore) {
      for (const projection of ['by_window', 'by_window_time'].filter((p) => !without.includes(p))) {
        const add = LEDGER_TABLES.find((m) => m.name === `usage_events.projection_${projection}`)!.sql(db);
        await ch.command({ query: `ALTER TABLE ${db}.usage_events DROP PROJECTION ${projection}` });
        await ch.command({ query: add.replace(WINDOW_AGGREGATES.last, LAST_BEFORE) });
      }
    }
    const base = Date.UTC(2026, 10, 30, 11);
    const meters = "['api_calls', 'tokens', 'gpu_seconds', 'storage_gb', 'active_users']";
    const aggregations = "['count', 'sum', 'sum', 'max', 'unique_count']";
    const windows = "['hour', 'hour', 'minute', 'day', 'day']";
    const cpuStart = process.cpuUsage();
    let insertMs = 0;
    for (let u = 0; u < units; u += 1) {
      const start = performance.now();
      await ch.command({
        query: `
          INSERT INTO ${db}.usage_events (tenant, id, customer, meter, value, event_time, properties, source, body_hash, meter_aggregation,
            meter_window, meter_allowed_lateness_ms, meter_definition_hash, meter_unique_property, window_start, disposition, topic,
            partition, offset, ingested_at, ingested_by)
          SELECT concat('tenant-', toString(number % 3)), toString(generateUUIDv4()), concat('cust-', toString(cityHash64(number, ${u}) % 10000)),
            ${meters}[number % 5 + 1], toDecimal128((number % 100) / 10, 9),
            fromUnixTimestamp64Milli(${base} + (number * 144 + ${u} * 97) % 3600000) AS et,
            map('region', 'eu', 'user', toString(number % 500)), NULL, hex(SHA256(toString(number))),
            ${aggregations}[number % 5 + 1], ${windows}[number % 5 + 1], 3600000, 'bench', if(number % 5 = 4, 'user', ''),
            multiIf(${windows}[number % 5 + 1] = 'minute', toStartOfInterval(et, INTERVAL 1 MINUTE),
                    ${windows}[number % 5 + 1] = 'day', toStartOfInterval(et, INTERVAL 1 DAY), toStartOfInterval(et, INTERVAL 1 HOUR)),
            'counted', 'bench.events', number % 8, ${u * ROWS_PER_UNIT} + number,
            fromUnixTimestamp64Micro(${(base + 3_600_000 + u * 1000) * 1000}), 'ledger-insert'
          FROM numbers(${ROWS_PER_UNIT})`,
      });
      insertMs += performance.now() - start;
    }
    const optimizeStart = performance.now();
    await ch.command({ query: `OPTIMIZE TABLE ${db}.usage_events FINAL` });
    const optimizeMs = performance.now() - optimizeStart;
    const cpu = process.cpuUsage(cpuStart);
    const rs = await ch.query({
      query: `SELECT sum(bytes_on_disk) AS bytes FROM system.parts WHERE database = {db:String} AND table = 'usage_events' AND active`,
      query_params: { db },
      format: 'JSONEachRow',
    });
    const bytes = (await rs.json<{ bytes: string }>())[0]?.bytes ?? 0;
    const millions = (units * ROWS_PER_UNIT) / 1e6;
    const round = (x: number) => Math.round(x * 100) / 100;
    process.stdout.write(
      `${JSON.stringify({
        benchmark: 'ledger-insert',
        rows: units * ROWS_PER_UNIT,
        without,
        lastBefore,
        insertMsPerUnit: round(insertMs / units),
        optimizeMs: Math.round(optimizeMs),
        cpuSecondsPerMillionRows: round((cpu.user + cpu.system) / 1e6 / millions),
        diskMBPerMillionRows: round(Number(bytes) / 1e6 / millions),
        loadavg: os.loadavg(),
      })}\n`,
    );
  });
  return 0;
}
