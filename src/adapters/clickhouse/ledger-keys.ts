import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

/** Where the dedupe filter learns the ledger's keys: all of them at start-up, then what others stored. */
export interface LedgerKeySource {
  load(fromEventTime: number, onKey: (tenant: string, id: string) => void): Promise<number>;
  /** Keys ingested since `since` (ms), except those of `own` partitions (null: all partitions). */
  ingestedSince(since: number, own: { readonly topic: string; readonly partitions: readonly number[] } | null): Promise<[string, string][]>;
}

export function createLedgerKeySource(client: ClickHouseClient, database: string): LedgerKeySource {
  return {
    load: (from, onKey) => loadLedgerKeys(client, database, from, onKey),
    ingestedSince: (since, own) => ledgerKeysIngestedSince(client, database, since, own),
  };
}

/** Keys are read in pages of this many rows, so loading millions never holds more than one page. */
const PAGE_ROWS = 200_000;

/**
 * The dedupe keys the ledger holds, for the worker's in-memory filter: every key with an event
 * time at or after `fromEventTime`, read in primary-key order one page at a time (each page
 * starts past the last key of the previous one, so no page re-reads another's granules).
 * Resolves with the number of keys read.
 */
export async function loadLedgerKeys(
  client: ClickHouseClient,
  database: string,
  fromEventTime: number,
  onKey: (tenant: string, id: string) => void,
  pageRows = PAGE_ROWS,
): Promise<number> {
  assertIdentifier(database);
  let after: [string, string] | null = null;
  let total = 0;
  for (;;) {
    const page: [string, string][] = await keyPage(client, {
      query: `
        SELECT tenant, id FROM ${database}.usage_events
        WHERE event_time >= fromUnixTimestamp64Milli({from:Int64})
          AND ({first:UInt8} = 1 OR (tenant, id) > ({tenant:String}, {id:String}))
        ORDER BY tenant, id
        LIMIT {limit:UInt64}
        SETTINGS optimize_use_projections = 0`,
      query_params: { from: fromEventTime, first: after ? 0 : 1, tenant: after?.[0] ?? '', id: after?.[1] ?? '', limit: pageRows },
    });
    for (const [tenant, id] of page) onKey(tenant, id);
    total += page.length;
    if (page.length < pageRows) return total;
    after = page[page.length - 1]!;
  }
}

/**
 * Keys other workers stored since `ingestedSince` (ms): everything in the ledger ingested since
 * then except what this worker's own partitions hold (`ownPartitions` null: every partition, for
 * the first catch-up after a rebalance, when partitions may have come from another worker).
 * Reads only recent granules (ingested_at has a minmax index): its cost follows the rate of
 * writes, not the size of the ledger.
 */
export async function ledgerKeysIngestedSince(
  client: ClickHouseClient,
  database: string,
  ingestedSince: number,
  own: { readonly topic: string; readonly partitions: readonly number[] } | null,
): Promise<[string, string][]> {
  assertIdentifier(database);
  return keyPage(client, {
    query: `
      SELECT tenant, id FROM ${database}.usage_events
      WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64})
        AND NOT (topic = {topic:String} AND partition IN {partitions:Array(UInt32)})
      SETTINGS optimize_use_projections = 0`,
    query_params: { since: ingestedSince, topic: own?.topic ?? '', partitions: own ? [...own.partitions] : [] },
  });
}

async function keyPage(client: ClickHouseClient, q: { query: string; query_params: Record<string, unknown> }): Promise<[string, string][]> {
  const rs = await client.query({ ...q, format: 'JSONCompactEachRow' });
  return rs.json<[string, string]>();
}
