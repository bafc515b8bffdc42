import { TupleParam } from '@clickhouse/client';

/** A (tenant, customer, meter): what the pusher plans, and what the push ledger is keyed by. */
export interface StreamKey {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
}

/**
 * Which streams a pusher query covers: all of them (undefined), or exactly these. Every table it
 * is used on is ordered by (tenant, customer, meter, …), so a scoped query reads the index
 * ranges of its streams, not the table.
 */
export type StreamScope = readonly StreamKey[] | undefined;

/** The SQL condition and its query parameter for a scope (`streams` must not be used otherwise). */
export function scopeCondition(scope: StreamScope): { sql: string; params: Record<string, unknown> } {
  if (scope === undefined) return { sql: '1', params: {} };
  return {
    sql: '(tenant, customer, meter) IN {streams:Array(Tuple(String, String, String))}',
    params: { streams: scope.map((s) => new TupleParam([s.tenant, s.customer, s.meter])) },
  };
}
