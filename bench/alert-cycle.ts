import os from 'node:os';
import type { ClickHouseClient } from '../src/adapters/clickhouse/client';
import { periodTotalsFrom } from '../src/adapters/clickhouse/period-totals';
import type { ChangedStream } from '../src/adapters/clickhouse/stream-store';
import { createStreamStore } from '../src/adapters/clickhouse/stream-store';
import { scopeCondition } from '../src/adapters/clickhouse/stream-scope';
import { SELECT_WINDOW_AGGREGATES } from '../src/adapters/clickhouse/window-aggregates';
import { parseDecimal } from '../src/domain/decimal';
import { splitPoint } from '../src/domain/stream-parts';
import { withScratchLedger } from './scratch-ledger';
import { percentile } from './workload';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Late in a billing period (anchor day 1): 26 days of the month lie before the split (the start of yesterday). */
const NOW = Date.UTC(2026, 10, 28, 12);
const ROUNDS = 5;

/**
 * `npm run bench -- --alert-cycle [STREAMS]`: what one alert cycle reads when every stream of
 * an allotment's meter changed in the last hour, as the month fills up. In a fresh embedded
 * ledger (the real migrations): STREAMS `tokens` streams with one event per hour, 5 and then 25
 * days of the month before the split, and one in the last hour. Per history length, the median
 * of five cycles:
 *  - `wholePeriodMs`: the read each cycle made before (period-totals.ts at 42712b0: every
 *    changed stream's billing period, one statement);
 *  - `cycleMs`: a cycle now (the stream store's recent windows, the older span kept since the
 *    term's first read, which `termStartMs` is).
 * Both must give the same totals. Prints one JSON line.
 */
export function measureAlertCycle(streams: number): Promise<number> {
  return withScratchLedger('alert-cycle', ({ ch, db }) => measure(ch, db, streams));
}

async function measure(ch: ClickHouseClient, db: string, streams: number): Promise<number> {
  const split = splitPoint(NOW);
  const insertHours = (fromHour: number, toHour: number) =>
    ch.command({
      query: `
        INSERT INTO ${db}.usage_events (tenant, id, customer, meter, value, event_time, properties, source, body_hash, meter_aggregation,
          meter_window, meter_allowed_lateness_ms, meter_definition_hash, meter_unique_property, window_start, disposition, topic,
          partition, offset, ingested_at, ingested_by)
        SELECT 'tenant-a', concat('e-', toString(h), '-', toString(s)), concat('cust-', toString(s)), 'tokens', toDecimal128((s % 7) + 0.5, 9),
          fromUnixTimestamp64Milli(toInt64(h) * ${HOUR} + 60000) AS et, map(), NULL, hex(SHA256(toString(number))), 'sum', 'hour', 3600000,
          'bench', '', toStartOfInterval(et, INTERVAL 1 HOUR), 'counted', 'bench.events', 0, number, now64(6), 'alert-cycle'
        FROM (SELECT number, intDiv(number, ${streams}) + ${fromHour} AS h, number % ${streams} AS s FROM numbers(${(toHour - fromHour) * streams}))`,
    });
  const scope: ChangedStream[] = Array.from({ length: streams }, (_, s) => ({ tenant: 'tenant-a', customer: `cust-${s}`, meter: 'tokens', oldestWindowStart: NOW - HOUR }));
  const median = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 0.5)!;
  const timed = async <T>(f: () => Promise<T>): Promise<[number, T]> => {
    const start = performance.now();
    const result = await f();
    return [performance.now() - start, result];
  };
  const render = (totals: readonly { customer: string; periodStart: number; totalUnits: bigint }[]) =>
    totals.map((t) => `${t.customer}@${t.periodStart}=${t.totalUnits}`).sort().join(',');
  const byHistoryDays: Record<string, unknown>[] = [];
  let equal = true;
  // The last hour's events first (the usage that changed), then the month behind the split.
  await insertHours(Math.floor((NOW - HOUR) / HOUR), Math.floor(NOW / HOUR));
  let historyFromHour = Math.floor(split / HOUR);
  for (const days of [5, 25]) {
    await insertHours(Math.floor((split - days * DAY) / HOUR), historyFromHour);
    historyFromHour = Math.floor((split - days * DAY) / HOUR);
    await ch.command({ query: `OPTIMIZE TABLE ${db}.usage_events FINAL` });
    const whole: number[] = [];
    let wholeTotals = '';
    for (let r = 0; r < ROUNDS; r += 1) {
      const [ms, rows] = await timed(() => readWholePeriods(ch, db, scope, split));
      whole.push(ms);
      wholeTotals = render(rows);
    }
    const totals = periodTotalsFrom(createStreamStore(ch, db, { clock: () => NOW }), 1);
    const [termStartMs] = await timed(() => totals.read({ meters: ['tokens'], scope: undefined, fromTime: NOW }));
    const cycle: number[] = [];
    let cycleTotals = '';
    for (let r = 0; r < ROUNDS; r += 1) {
      const [ms, rows] = await timed(() => totals.read({ meters: ['tokens'], scope, fromTime: NOW - HOUR }));
      cycle.push(ms);
      cycleTotals = render(rows);
    }
    equal &&= cycleTotals === wholeTotals && wholeTotals !== '';
    const round = (x: number) => Math.round(x * 10) / 10;
    const counted = await (await ch.query({ query: `SELECT count() AS rows FROM ${db}.usage_events`, format: 'JSONEachRow' })).json<{ rows: string }>();
    byHistoryDays.push({ days, ledgerRows: Number(counted[0]?.rows ?? 0), wholePeriodMs: round(median(whole)), termStartMs: round(termStartMs), cycleMs: round(median(cycle)) });
  }
  process.stdout.write(`${JSON.stringify({ benchmark: 'alert-cycle', streams, byHistoryDays, sameTotals: equal, loadavg: os.loadavg() })}\n`);
  return equal ? 0 : 1;
}

/** The read each alert cycle made before 2026-11-30: every scoped stream's billing period, whole (anchor day 1). */
async function readWholePeriods(ch: ClickHouseClient, db: string, scope: readonly ChangedStream[], split: number) {
  const from = Date.UTC(new Date(split).getUTCFullYear(), new Date(split).getUTCMonth(), 1);
  const streams = scopeCondition(scope);
  const rs = await ch.query({
    query: `
      SELECT customer, toString(toUnixTimestamp64Milli(toDateTime64(toStartOfMonth(window_start), 3, 'UTC'))) AS period, ${SELECT_WINDOW_AGGREGATES}
      FROM ${db}.usage_events
      WHERE disposition = 'counted' AND meter IN {meters:Array(String)} AND ${streams.sql}
        AND window_start >= fromUnixTimestamp64Milli({from:Int64})
      GROUP BY tenant, customer, meter, period`,
    query_params: { meters: ['tokens'], from, ...streams.params },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ customer: string; period: string; sum_v: string }>();
  return rows.map((r) => {
    const d = parseDecimal(r.sum_v);
    if (!d.ok) throw new Error(d.reason);
    return { customer: r.customer, periodStart: Number(r.period), totalUnits: d.units };
  });
}
