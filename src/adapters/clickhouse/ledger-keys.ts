import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

/** Where the dedupe filter learns the ledger's keys: all of them at start-up, then what others stored. */
export interface LedgerKeySource {
  load(fromEventTime: number, onKey: (tenant: string, id: string) => void): Promise<number>;
  /** Keys ingested since `since` (ms) by anyone but `self` (the worker's own `ingested_by`). */
  ingestedSince(since: number, self: string): Promise<[string, string][]>;
}

/**
 * `proveProjection` (tests only): the catch-up read runs with force_optimize_projection_name, so
 * it fails unless the by_ingested projection serves it.
 */
export function createLedgerKeySource(client: ClickHouseClient, database: string, opts: { proveProjection?: boolean } = {}): LedgerKeySource {
  return {
    load: (from, onKey) => loadLedgerKeys(client, database, from, onKey),
    ingestedSince: (since, self) => ledgerKeysIngestedSince(client, database, since, self, opts),
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
 * Keys others stored since `ingestedSince` (ms): other workers, and writers outside any worker
 * (a redrive or replay stores under the original offsets, in partitions a worker may own).
 * Served by the by_ingested projection (keys ordered by ingested_at), so it reads only the
 * granules of recent writes in every part, merged ones included: its cost follows the rate of
 * writes, not the size of the ledger.
 */
export async function ledgerKeysIngestedSince(
  client: ClickHouseClient,
  database: string,
  ingestedSince: number,
  self: string,
  opts: { proveProjection?: boolean } = {},
): Promise<[string, string][]> {
  assertIdentifier(database);
  const forceProjection = opts.proveProjection ? ", force_optimize_projection_name = 'by_ingested'" : '';
  return keyPage(client, {
    query: `
      SELECT tenant, id FROM ${database}.usage_events
      WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64})
        AND ingested_by != {self:String}
      SETTINGS optimize_use_projections = 1${forceProjection}`,
    query_params: { since: ingestedSince, self },
  });
}

async function keyPage(client: ClickHouseClient, q: { query: string; query_params: Record<string, unknown> }): Promise<[string, string][]> {
  const rs = await client.query({ ...q, format: 'JSONCompactEachRow' });
  return rs.json<[string, string]>();
}
