import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from '../identifier';
import type { Migration } from '../migrations';

/**
 * Keeping the ledger's projections current on a ledger created by an older version. ClickHouse
 * cannot change a projection's definition in place, and `ADD PROJECTION IF NOT EXISTS` keeps an
 * old one as it is: a reader whose aggregates the old definition lacks would then read every
 * event instead (correct, at a cost growing with the ledger). So a stale projection is dropped
 * before it is added again, and parts written without a projection are rewritten with it by a
 * background mutation (`MATERIALIZE PROJECTION`). Until that mutation reaches a part, ClickHouse
 * answers from that part's rows: results are the same, only slower.
 */

/** The ledger's CREATE TABLE statement as the server stores it ('' before the table exists). */
export async function ledgerCreateTable(client: ClickHouseClient, db: string): Promise<string> {
  const rs = await client.query({
    query: `SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = 'usage_events'`,
    query_params: { db },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ create_table_query: string }>();
  return row?.create_table_query ?? '';
}

/** The projection's definition as the server stores it, or null when the ledger has no such projection. */
async function projectionDefinition(client: ClickHouseClient, db: string, projection: string): Promise<string | null> {
  return definitionIn(await ledgerCreateTable(client, db), projection);
}

/** `PROJECTION name (…)` in a CREATE TABLE statement, up to its matching parenthesis. Pure. */
export function definitionIn(createTable: string, projection: string): string | null {
  const start = createTable.indexOf(`PROJECTION ${projection} (`);
  if (start < 0) return null;
  let depth = 0;
  for (let i = createTable.indexOf('(', start); i < createTable.length; i++) {
    if (createTable[i] === '(') depth += 1;
    else if (createTable[i] === ')' && --depth === 0) return createTable.slice(start, i + 1);
  }
  return createTable.slice(start);
}

/**
 * Drops `projection` when it exists but lacks one of `expressions` (each as the server formats
 * it, which is how window-aggregates.ts writes them): the ADD that follows creates it anew.
 */
export function dropStaleProjection(projection: string, expressions: readonly string[]): Migration {
  assertIdentifier(projection);
  return {
    name: `usage_events.projection_${projection}.drop_if_stale`,
    when: async (client, db) => {
      const definition = await projectionDefinition(client, db, projection);
      return definition !== null && expressions.some((e) => !definition.includes(e));
    },
    sql: (db) => `ALTER TABLE ${db}.usage_events DROP PROJECTION IF EXISTS ${projection}`,
  };
}

/**
 * Rewrites, in the background, the parts that lack `projection` (written before it existed or
 * was redefined), unless such a rewrite is already under way.
 */
export function materializeMissingProjection(projection: string): Migration {
  assertIdentifier(projection);
  return {
    name: `usage_events.projection_${projection}.materialize`,
    when: async (client, db) => {
      const rs = await client.query({
        query: `
          SELECT
            (SELECT count() FROM system.parts
              WHERE database = {db:String} AND table = 'usage_events' AND active AND NOT has(projections, {projection:String})) AS missing,
            (SELECT count() FROM system.mutations
              WHERE database = {db:String} AND table = 'usage_events' AND NOT is_done
                AND position(command, concat('MATERIALIZE PROJECTION ', {projection:String})) > 0) AS running`,
        query_params: { db, projection },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ missing: string | number; running: string | number }>();
      return Number(row?.missing ?? 0) > 0 && Number(row?.running ?? 0) === 0;
    },
    sql: (db) => `ALTER TABLE ${db}.usage_events MATERIALIZE PROJECTION ${projection}`,
  };
}
