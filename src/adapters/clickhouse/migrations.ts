import type { ClickHouseClient } from '@clickhouse/client';
import { BILLING_TABLES } from './schema/billing-tables';
import { LEDGER_TABLES } from './schema/ledger-tables';
import { OPERATION_TABLES } from './schema/operation-tables';
import { WINDOW_TABLES } from './schema/window-tables';
import { assertIdentifier } from './identifier';

export { assertIdentifier };

/**
 * Every table, created idempotently: each statement is safe to run any number of times, so
 * `meterline migrate` and start-up both simply run them all, in order.
 *
 * Every statement names its database explicitly (`{db}.table`): the embedded engine ignores
 * the client's default database, and explicit names keep the two modes identical.
 */
export interface Migration {
  readonly name: string;
  readonly sql: (db: string) => string;
  /** Runs first; the statement is skipped when it resolves false. */
  readonly when?: (client: ClickHouseClient, db: string) => Promise<boolean>;
}

export const MIGRATIONS: readonly Migration[] = [
  { name: 'database', sql: (db) => `CREATE DATABASE IF NOT EXISTS ${db}` },
  ...LEDGER_TABLES,
  ...WINDOW_TABLES,
  ...BILLING_TABLES,
  ...OPERATION_TABLES,
];

export async function migrate(client: ClickHouseClient, database: string): Promise<string[]> {
  assertIdentifier(database);
  const applied: string[] = [];
  for (const m of MIGRATIONS) {
    if (m.when && !(await m.when(client, database))) continue;
    await client.command({ query: m.sql(database) });
    applied.push(m.name);
  }
  return applied;
}
