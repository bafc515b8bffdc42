import type { ClickHouseClient } from '@clickhouse/client';
import type { SourceRef } from '../../domain/ingest-decision';
import { assertIdentifier } from './migrations';
import { encodeRows, REJECTED_EVENTS } from './ledger-rows';
import { insertTsv } from './tsv-insert';

export interface RejectedRow {
  readonly reasonCode: string;
  readonly reason: string;
  readonly raw: Buffer | null;
  readonly key: Buffer | null;
  readonly tenant: string | null;
  readonly eventId: string | null;
  readonly ref: SourceRef;
  readonly rejectedAt: string;
  readonly status: 'rejected' | 'redriven';
}

/** Dead letters as stored (latest version of each, by source offset). */
export async function listRejected(
  client: ClickHouseClient,
  database: string,
  filter: { reason?: string; status?: 'rejected' | 'redriven'; limit?: number } = {},
): Promise<RejectedRow[]> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `
      SELECT reason_code, reason, raw_payload, message_key, tenant, event_id, topic, partition, toString(offset) AS offset,
             toString(rejected_at) AS rejected_at, status
      FROM ${database}.rejected_events FINAL
      WHERE ({reason:String} = '' OR reason_code = {reason:String}) AND ({status:String} = '' OR status = {status:String})
      ORDER BY topic, partition, offset
      LIMIT {limit:UInt64}`,
    query_params: { reason: filter.reason ?? '', status: filter.status ?? '', limit: filter.limit ?? 1_000_000 },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<Record<string, string | number | null>>();
  return rows.map((r) => ({
    reasonCode: String(r.reason_code),
    reason: String(r.reason),
    raw: r.raw_payload ? Buffer.from(String(r.raw_payload), 'base64') : null,
    key: r.message_key === null ? null : Buffer.from(String(r.message_key), 'utf8'),
    tenant: r.tenant === null ? null : String(r.tenant),
    eventId: r.event_id === null ? null : String(r.event_id),
    ref: { topic: String(r.topic), partition: Number(r.partition), offset: String(r.offset) },
    rejectedAt: String(r.rejected_at),
    status: r.status === 'redriven' ? 'redriven' : 'rejected',
  }));
}

/** Marks dead letters as redriven: a new, higher version of the same row (source offset). */
export async function markRedriven(client: ClickHouseClient, database: string, rows: readonly RejectedRow[], now: number): Promise<void> {
  assertIdentifier(database);
  if (rows.length === 0) return;
  const versions = rows.map((r) => ({ ...r, status: 'redriven' as const, at: now, version: now }));
  await insertTsv(client, `${database}.rejected_events`, REJECTED_EVENTS.columns, encodeRows(REJECTED_EVENTS, versions));
}
