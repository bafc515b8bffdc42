import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { streamChanges } from '../../src/domain/stream-changes';

/**
 * Stores first copies in the ledger and records their streams in the change record, as an
 * ingest unit does (the pusher finds them there); `changedAt` stamps the change rows.
 */
export async function storeAsIngest(client: ClickHouseClient, database: string, events: readonly NewEvent[], changedAt: number = Date.now()): Promise<void> {
  const ledger = createLedgerStore(client, database, { dedupeWindowMs: 35 * 86_400_000 });
  await ledger.insertNew(events, Date.now());
  await ledger.recordChanges(streamChanges(events.map((e) => ({ kind: 'new' as const, candidate: e.candidate }))), changedAt);
}
