import type { ClickHouseClient } from '@clickhouse/client';
import { listRejected, markRedriven } from '../adapters/clickhouse/rejected-store';
import { ingestBatch, type IngestDeps } from './ingest-batch';

export interface RedriveSummary {
  considered: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  alreadyStored: number;
  stillRejected: number;
  /** reason code → count, for those still rejected (with today's meters and schemas). */
  stillRejectedByReason: Record<string, number>;
}

/**
 * Re-processes dead letters through the very same ingest path (decode → validate → enrich →
 * dedupe → store), under their original source offsets. An event stored by an earlier redrive
 * or by the live consumer is found by the ledger lookup, so a redrive never double-counts.
 * Rows that now pass are marked 'redriven'; the rest stay 'rejected' with today's reason.
 */
export async function redriveDeadLetters(
  client: ClickHouseClient,
  database: string,
  deps: Omit<IngestDeps, 'deadLetters'>,
  opts: { reason?: string; chunkSize?: number } = {},
): Promise<RedriveSummary> {
  const rows = await listRejected(client, database, { reason: opts.reason, status: 'rejected' });
  const summary: RedriveSummary = { considered: rows.length, accepted: 0, duplicates: 0, conflicts: 0, alreadyStored: 0, stillRejected: 0, stillRejectedByReason: {} };
  const chunk = opts.chunkSize ?? 5000;
  for (let i = 0; i < rows.length; i += chunk) {
    const slice = rows.slice(i, i + chunk);
    const outcome = await ingestBatch(
      slice.map((r) => ({ ref: r.ref, key: r.key, value: r.raw })),
      deps,
    );
    const stillRejected = new Set(outcome.rejections.map((r) => `${r.ref.topic}/${r.ref.partition}/${r.ref.offset}`));
    for (const r of outcome.rejections) summary.stillRejectedByReason[r.code] = (summary.stillRejectedByReason[r.code] ?? 0) + 1;
    // Marked only after the events are durable in the ledger (ingestBatch resolved).
    await markRedriven(
      client,
      database,
      slice.filter((r) => !stillRejected.has(`${r.ref.topic}/${r.ref.partition}/${r.ref.offset}`)),
      deps.clock(),
    );
    summary.accepted += outcome.accepted;
    summary.duplicates += outcome.duplicates;
    summary.conflicts += outcome.conflicts;
    summary.alreadyStored += outcome.redelivered;
    summary.stillRejected += outcome.rejected;
  }
  return summary;
}
