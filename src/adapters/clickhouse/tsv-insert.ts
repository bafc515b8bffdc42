import { Readable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';

/**
 * Inserts a TabSeparated body into `table` (one INSERT, hence one atomic part per partition of
 * the table). The bytes are handed over as they are: never re-encoded, never mutated until the
 * promise settles.
 */
export type TsvInsert = (table: string, columns: readonly string[], tsv: Buffer) => Promise<void>;

/**
 * The raw path of each client that has one (the embedded engine's zero-copy insert, parsed on
 * a libuv thread, off the event loop). A client without one (a server) gets the same bytes over
 * HTTP as `INSERT … FORMAT TabSeparated`.
 */
const rawInserts = new WeakMap<ClickHouseClient, TsvInsert>();

export function registerRawTsvInsert(client: ClickHouseClient, insert: TsvInsert): void {
  rawInserts.set(client, insert);
}

/** The raw insert registered for `client`, if any (for wrappers that decorate a client). */
export function rawTsvInsertOf(client: ClickHouseClient): TsvInsert | undefined {
  return rawInserts.get(client);
}

export async function insertTsv(client: ClickHouseClient, table: string, columns: readonly string[], tsv: Buffer): Promise<void> {
  if (tsv.length === 0) return;
  const raw = rawInserts.get(client);
  if (raw) return raw(table, columns, tsv);
  await client.insert({ table, columns: [...columns] as [string, ...string[]], values: Readable.from([tsv], { objectMode: false }), format: 'TabSeparated' });
}
