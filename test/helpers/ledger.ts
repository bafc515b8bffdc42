import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { streamChanges, type StreamChange } from '../../src/domain/stream-changes';

/**
 * Stores first copies in the ledger as an ingest unit does: its INSERT records their streams in
 * the change record (the pusher finds them there). `changedAt` stamps the rows (their ingested_at,
 * hence their change rows), `ingestedBy` names the worker writing (default ''). Resolves with the
 * changes as the unit publishes them in process.
 */
export async function storeAsIngest(
  client: ClickHouseClient,
  database: string,
  events: readonly NewEvent[],
  changedAt: number = Date.now(),
  ingestedBy?: string,
): Promise<StreamChange[]> {
  const ledger = createLedgerStore(client, database, { dedupeWindowMs: 35 * 86_400_000, ...(ingestedBy === undefined ? {} : { ingestedBy }) });
  await ledger.insertNew(events, changedAt);
  return streamChanges(events.map((e) => ({ kind: 'new' as const, candidate: e.candidate })));
}
