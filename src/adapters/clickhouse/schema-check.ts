import { MeterlineError } from '../../runtime/errors';
import type { ClickHouseClient } from './client';
import { MIGRATIONS, assertIdentifier } from './migrations';

/** The tables `meterline migrate` creates (its other steps add columns, indexes and projections to them). */
export const MIGRATED_TABLES: readonly string[] = MIGRATIONS.map((m) => m.name).filter((name) => name !== 'database' && !name.includes('.'));

/** The tables of `database` that `meterline migrate` would create and that do not exist. Reads only. */
export async function missingTables(client: ClickHouseClient, database: string): Promise<string[]> {
  assertIdentifier(database);
  const rs = await client.query({
    query: 'SELECT name FROM system.tables WHERE database = {db:String}',
    query_params: { db: database },
    format: 'JSONEachRow',
  });
  const present = new Set((await rs.json<{ name: string }>()).map((r) => r.name));
  return MIGRATED_TABLES.filter((t) => !present.has(t));
}

/**
 * For commands that only read: they never create what is missing (they may run as a read-only
 * ClickHouse user), they say how to create it.
 */
export async function requireSchema(client: ClickHouseClient, database: string): Promise<void> {
  const missing = await missingTables(client, database);
  if (missing.length === 0) return;
  const what = missing.length === MIGRATED_TABLES.length ? `ClickHouse database ${database} has no meterline tables yet` : `ClickHouse database ${database} lacks the tables ${missing.join(', ')}`;
  throw new MeterlineError('schema_missing', `${what}: run \`meterline migrate\` first (with a user allowed to create tables)`);
}
