import type { PushRecord, PushStore } from '../adapters/clickhouse/push-store';

export interface ResolveReport {
  readonly resolved: PushRecord[];
  readonly unknown: string[];
  /** Pushes that need nothing from a person (reported, pending, shadow, already resolved). */
  readonly notResolvable: { identifier: string; status: string }[];
}

/**
 * Marks failed or held pushes as settled by a person (billed by hand, credited, confirmed
 * delivered in Stripe's dashboard…), with a note saying how. Nothing is sent and no total
 * changes: their value already counts as pushed, so the pusher never resends it. What changes
 * is the push ledger's current state, which `meterline_stripe_pushes_failed` / `_held` (and so
 * their alerts) follow.
 */
export async function resolvePushes(pushes: PushStore, identifiers: readonly string[], note: string, now: number): Promise<ResolveReport> {
  const found = new Map((await pushes.list({ identifiers })).map((p) => [p.identifier, p]));
  const resolved: PushRecord[] = [];
  const unknown: string[] = [];
  const notResolvable: { identifier: string; status: string }[] = [];
  for (const id of new Set(identifiers)) {
    const p = found.get(id);
    if (!p) unknown.push(id);
    else if (p.status !== 'failed' && p.status !== 'held') notResolvable.push({ identifier: id, status: p.status });
    else resolved.push(p);
  }
  await Promise.all(
    resolved.map((p) =>
      pushes.record(p, 'resolved', { attempts: p.attempts, createdAt: p.createdAt, now, lastError: `${p.status}: ${p.lastError} | resolved: ${note}` }),
    ),
  );
  return { resolved, unknown, notResolvable };
}
