import { TupleParam } from '@clickhouse/client';
import { splitByWeight } from '../../domain/split-by-weight';

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

/** A (tenant, customer): a piece of an unscoped read covers whole customers, so each stream is read whole by one statement. */
export interface CustomerKey {
  readonly tenant: string;
  readonly customer: string;
}

/** The SQL condition and its query parameter for exactly these customers' streams (`customers` must not be used otherwise). */
export function customersCondition(customers: readonly CustomerKey[]): { sql: string; params: Record<string, unknown> } {
  return {
    sql: '(tenant, customer) IN {customers:Array(Tuple(String, String))}',
    params: { customers: customers.map((c) => new TupleParam([c.tenant, c.customer])) },
  };
}

/**
 * At most about this many bytes of keys per statement. Query parameters travel in the URL of an
 * HTTP request to a ClickHouse server, whose limit (`http_max_uri_size`) is 1 MiB by default, and
 * percent-encoding can triple them: a piece stays well under that whatever the keys' length.
 */
export const KEY_BYTES_PER_READ = 256 * 1024;

/** The bytes a key adds to a statement's parameters (UTF-8, plus the tuple's quoting and separators). */
export function keyBytes(key: CustomerKey & { readonly meter?: string }): number {
  return Buffer.byteLength(key.tenant) + Buffer.byteLength(key.customer) + (key.meter === undefined ? 0 : Buffer.byteLength(key.meter)) + 12;
}

/**
 * A read's keys in pieces of at most `streamsPerRead` streams and KEY_BYTES_PER_READ bytes of
 * keys (a key with more streams than that is a piece of its own). Each key weighs the larger of
 * its two shares, so a piece whose weights sum to at most 1 is within both bounds.
 */
export function readPieces<K extends CustomerKey & { readonly meter?: string }>(keys: readonly K[], streamsOf: (key: K) => number, streamsPerRead: number): K[][] {
  return splitByWeight(keys, (k) => Math.max(streamsOf(k) / streamsPerRead, keyBytes(k) / KEY_BYTES_PER_READ), 1);
}
