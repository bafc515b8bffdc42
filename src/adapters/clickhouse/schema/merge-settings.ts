import type { ClickHouseClient } from '@clickhouse/client';
import type { Migration } from '../migrations';
import { ledgerCreateTable } from './projection-upkeep';

/**
 * How widely ClickHouse merges the ledger's parts: `merge_selector_base`, the least ratio between
 * a merge's total size and its biggest part that its merge selector accepts (ClickHouse's
 * default: 5). Every ingest unit writes one small part, with its three projections, and each
 * merge rewrites rows and projection states; a wider base merges each row fewer times (lower
 * write amplification) for a few more parts alive between merges.
 *
 * In the benchmark's backlog (1 M events, units of ~16,000 rows) the default's merges took 8.2–8.8
 * CPU seconds, more than the INSERTs' own work; with 10 they took 5.0–5.7 and the pipeline ran
 * 40,767–43,776 events/s against 35,829–39,765 (BENCHMARKS.md, fifteenth session). 20 merged no
 * less and kept 22–29 parts alive against 8–18: every read (dedupe lookups, span reads, the
 * usage_counters view) visits each part, and neither improved the p99 at 20,000 events/s (20's
 * early lead there did not hold), so the narrower base is kept.
 */
export const LEDGER_MERGE_SELECTOR_BASE = 10;

const SETTING = 'merge_selector_base';
/** The setting as SQL (constant text). */
const MERGE_SETTING = `${SETTING} = ${LEDGER_MERGE_SELECTOR_BASE}`;

/** Whether `createTable` (a server's CREATE TABLE text) sets `setting` to `value` already. Pure. */
export function setsTo(createTable: string, setting: string, value: number): boolean {
  const m = new RegExp(`\\b${setting} = ([0-9.]+)`).exec(createTable);
  return m !== null && Number(m[1]) === value;
}

async function needsMergeSetting(client: ClickHouseClient, db: string): Promise<boolean> {
  const rs = await client.query({
    query: `SELECT count() AS known FROM system.merge_tree_settings WHERE name = {setting:String}`,
    query_params: { setting: SETTING },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ known: string | number }>();
  // A server released before the setting (late 2024) keeps its default merges.
  return Number(row?.known ?? 0) > 0 && !setsTo(await ledgerCreateTable(client, db), SETTING, LEDGER_MERGE_SELECTOR_BASE);
}

/** Sets the ledger's merge base (new and older ledgers alike); skipped once set, or where the server lacks the setting. */
export const LEDGER_MERGE_SETTING: Migration = {
  name: `usage_events.${SETTING}`,
  when: needsMergeSetting,
  sql: (db) => `ALTER TABLE ${db}.usage_events MODIFY SETTING ${MERGE_SETTING}`,
};
