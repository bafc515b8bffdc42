import type { ClickHouseClient } from './client';

export interface LedgerSize {
  readonly rows: number;
  readonly bytes: number;
}

/**
 * Size of the dedupe store: the active parts of `usage_events` in the event months a dedupe
 * lookup may read (the ledger is partitioned by toYYYYMM(event_time)). Reads only part metadata
 * (system.parts), never the data, so it is cheap at any ledger size.
 */
export async function ledgerSize(client: ClickHouseClient, database: string, dedupeWindowMs: number, now: number): Promise<LedgerSize> {
  const from = new Date(now - dedupeWindowMs);
  const fromMonth = from.getUTCFullYear() * 100 + from.getUTCMonth() + 1;
  const rs = await client.query({
    query: `SELECT toString(sum(rows)) AS rows, toString(sum(bytes_on_disk)) AS bytes FROM system.parts
            WHERE database = {db:String} AND table = 'usage_events' AND active AND toUInt32OrZero(partition) >= {fromMonth:UInt32}`,
    query_params: { db: database, fromMonth },
    format: 'JSONEachRow',
  });
  const [row] = await rs.json<{ rows: string; bytes: string }>();
  return { rows: Number(row?.rows ?? 0), bytes: Number(row?.bytes ?? 0) };
}
