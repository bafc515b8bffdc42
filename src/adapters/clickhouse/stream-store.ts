import type { ClickHouseClient } from '@clickhouse/client';
import { customerKey, periodKey, streamKey } from '../../domain/keys';
import { composable, EMPTY_PART, mergeParts, partValue, splitExpired, splitPoint, type StreamPart } from '../../domain/stream-parts';
import type { WindowSize } from '../../domain/meters';
import { billingPeriodOf, WINDOW_MS } from '../../domain/windows';
import { listCustomers } from './customer-store';
import { assertIdentifier } from './migrations';
import { createPartReader } from './span-reads';
import type { StreamKey, StreamScope } from './stream-scope';

/** A delta stream's running total over all its windows, and the window its push is timestamped in. */
export interface DeltaStream {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly total: string;
  readonly windowStart: number;
  readonly windowEnd: number;
}

/** An absolute stream's value over one billing period (monthly from the anchor day, UTC), from the ledger. */
export interface AbsoluteStream {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly periodStart: number;
  readonly value: string;
  readonly windowStart: number;
  readonly windowEnd: number;
}

/** A stream whose usage changed since some instant, and the span of windows that changed. */
export interface ChangedStream extends StreamKey {
  readonly oldestWindowStart: number;
  /** The newest window that changed (absent: unknown, e.g. a stream re-planned for another reason). */
  readonly newestWindowStart?: number;
}

export interface StreamStore {
  /**
   * Delta totals: of every stream (scope undefined), or of the streams in scope. A scoped stream
   * whose oldest changed window is recent is read from its recent windows only (see
   * domain/stream-parts.ts); the older span comes from memory.
   */
  deltaStreams(meters: readonly string[], scope?: StreamScope | readonly ChangedStream[]): Promise<DeltaStream[]>;
  /** `fromTime`: only billing periods ending after it (the period holding it and later ones). */
  absoluteStreams(meters: readonly string[], anchorDay?: number, scope?: StreamScope | readonly ChangedStream[], fromTime?: number): Promise<AbsoluteStream[]>;
  /** Drops what is kept in memory: the next unscoped read reads every stream's whole history. */
  forget(): void;
  /**
   * Windows starting before this instant (ms) may come from what is kept in memory; from it on,
   * every read reads them afresh. So an unscoped read covers every change in windows from here
   * on, and a change in an earlier window still needs a scoped read (which reads its stream whole).
   */
  keptBefore(): number;
  /**
   * Windows from this instant (ms) on were read afresh, for every stream in its scope, by the last
   * read of `mode` (a stream read whole, from its oldest changed window, further back too). So a
   * change published before that read began, in a window from here or from the stream's oldest
   * changed window on, is in the totals it returned. Infinity before any read.
   */
  freshFrom(mode: 'delta' | 'absolute'): number;
  /**
   * Streams changed at or after `since` (ms, by the writers' clocks) according to the change
   * record, and streams of customers whose Stripe mapping changed since then. `exceptWriter`:
   * leaves out the changes that worker wrote (a caller that learns them in process).
   */
  changedStreams(since: number, exceptWriter?: string): Promise<ChangedStream[]>;
  /** (tenant \0 customer) → Stripe customer id: every mapping, or those imported since `since` (ms). */
  customerMappings(since?: number): Promise<Map<string, string>>;
}


/**
 * What a store keeps of one push mode: for each (stream, period), the exact aggregates of its
 * windows before `split` (an empty part for a stream read with nothing there), and the meters
 * a read of every stream filled it for (a stream of those not in it has no windows before `split`).
 */
interface SpanCache {
  split: number;
  /** The billing anchor day its periods follow (null: delta, one all-time span). */
  readonly anchorDay: number | null;
  readonly older: Map<string, { readonly key: StreamKey; readonly period: number; readonly part: StreamPart; readonly native: WindowSize }>;
  readonly complete: Set<string>;
  /**
   * Streams seen holding a unique count (no older span composes with a recent one): a scoped read
   * reads them whole at once, without first reading their recent windows only to find that again.
   */
  readonly readWhole: Set<string>;
}

/**
 * `proveProjection` (tests only): every read of the ledger runs with force_optimize_projection,
 * so a query the by_window projection cannot serve fails instead of reading events. (Not for
 * production: ClickHouse also refuses a query whose key range selects no part at all.)
 */
export function createStreamStore(
  client: ClickHouseClient,
  database: string,
  opts: { clock?: () => number; proveProjection?: boolean; streamsPerRead?: number } = {},
): StreamStore {
  assertIdentifier(database);
  const readParts = createPartReader(client, database, opts);
  const clock = opts.clock ?? Date.now;
  const caches = { delta: emptyCache(clock(), null), absolute: emptyCache(clock(), 1) };
  /** Where each mode's last read of recent windows began (see freshFrom). */
  const lastFresh = { delta: Infinity, absolute: Infinity };
  const current = (mode: 'delta' | 'absolute', anchorDay: number | null) => {
    const c = caches[mode];
    if (splitExpired(c.split, clock()) || c.anchorDay !== anchorDay) caches[mode] = emptyCache(clock(), anchorDay);
    return caches[mode];
  };

  /**
   * Totals of (stream, period)s: the streams in `scope` (undefined: all), each read from its
   * recent windows when its older span is known and unchanged, else whole (and its older span
   * kept). Unique counts are always read whole. Returns the merged part per (stream, period).
   */
  const totals = async (
    mode: 'delta' | 'absolute',
    meters: readonly string[],
    requested: readonly (StreamKey & { oldestWindowStart?: number })[] | undefined,
    anchorDay: number | null,
    fromTime: number,
  ) => {
    // Only this read's meters' streams: the pusher hands the same changed streams to its delta and
    // its absolute read. Another mode's stream named in a statement matches nothing and only
    // lengthens it (1.7 to 2.5 times the streams per statement in the default benchmark).
    const scope = requested?.filter((s) => meters.includes(s.meter));
    const cache = current(mode, anchorDay);
    const { split } = cache;
    const periodFrom = (t: number) => (anchorDay === null ? 0 : billingPeriodOf(Math.max(0, t), anchorDay).start);
    const known = (s: StreamKey & { oldestWindowStart?: number }) =>
      (cache.complete.has(s.meter) || cache.older.has(periodKey(s, -1))) && s.oldestWindowStart !== undefined && s.oldestWindowStart >= split;
    // Unscoped: every stream's recent windows once the older spans are all known, else everything.
    const everything = scope === undefined && !meters.every((m) => cache.complete.has(m));
    const whole = (s: StreamKey) => cache.readWhole.has(streamKey(s));
    const warm: StreamScope = scope === undefined ? (everything ? [] : undefined) : scope.filter((s) => known(s) && !whole(s));
    const cold: StreamScope = scope === undefined ? (everything ? undefined : []) : scope.filter((s) => !known(s));
    // Where each stream's read starts: recent windows (warm), or at least the period holding the
    // split (cold: a later warm read may touch that period's recent windows and merges them with
    // the older span read now).
    const from = new Map((scope ?? []).map((s) => [streamKey(s), known(s) ? split : Math.min(s.oldestWindowStart ?? 0, split)]));
    const fromOf = (s: StreamKey) => from.get(streamKey(s)) ?? (everything ? fromTime : split);
    // A read of everything fills the older spans of every period a later read of recent windows
    // can touch: from the one holding the split on, even when asked for later periods only (the
    // split lies in the previous period for the first days of one).
    const coldFrom = everything ? periodFrom(Math.min(fromTime, split)) : periodFrom(Math.min(fromTime, split, ...(cold ?? []).map(fromOf)));
    // One after the other: the push loop asks the engine for one statement at a time (see STREAMS_PER_READ).
    lastFresh[mode] = Math.max(split, periodFrom(fromTime));
    const warmRows = await readParts(meters, warm, lastFresh[mode], split, anchorDay);
    const coldRows = await readParts(meters, cold, coldFrom, split, anchorDay);
    // A cold read tells everything about its streams' older spans.
    if (cold === undefined) {
      for (const [k, o] of cache.older) if (meters.includes(o.key.meter)) cache.older.delete(k);
      for (const m of meters) cache.complete.add(m);
    }
    for (const s of cold ?? []) cache.older.set(periodKey(s, -1), { key: s, period: -1, part: EMPTY_PART, native: 'hour' });
    for (const r of coldRows) if (!r.recent) cache.older.set(periodKey(r, r.period), { key: r, period: r.period, part: r.part, native: r.native });
    const merged = new Map<string, { key: StreamKey; period: number; part: StreamPart; native: WindowSize }>();
    // Known streams of unique counts: read whole below, from the period holding the split.
    const wholeReads: StreamKey[] = (scope ?? []).filter((s) => known(s) && whole(s));
    for (const r of [...warmRows, ...coldRows.filter((c) => c.recent)]) {
      const older = cache.older.get(periodKey(r, r.period));
      if (!composable(r.part.aggregation) || (older && !composable(older.part.aggregation))) wholeReads.push(r);
      else merged.set(periodKey(r, r.period), { key: r, period: r.period, part: mergeParts(older?.part ?? EMPTY_PART, r.part), native: r.native });
    }
    // Older spans without recent windows: of the streams read cold, or (unscoped delta) of every stream.
    const coldKeys = new Set((cold ?? []).map(streamKey));
    for (const [k, o] of cache.older) {
      if (o.period === -1 || merged.has(k) || !meters.includes(o.key.meter)) continue;
      const wanted = cold === undefined || coldKeys.has(streamKey(o.key)) || (scope === undefined && mode === 'delta');
      if (!wanted || (anchorDay !== null && billingPeriodOf(o.period, anchorDay).end <= fromTime)) continue;
      if (composable(o.part.aggregation)) merged.set(k, o);
      else wholeReads.push(o.key);
    }
    if (wholeReads.length > 0) {
      const streams = dedupeKeys(wholeReads);
      for (const s of streams) cache.readWhole.add(streamKey(s));
      for (const r of await readParts(meters, streams, periodFrom(Math.min(...streams.map(fromOf))), 0, anchorDay)) {
        merged.set(periodKey(r, r.period), { key: r, period: r.period, part: r.part, native: r.native });
      }
    }
    // Only the periods asked for: those ending after fromTime (the reads above may cover more).
    const asked = (period: number) => anchorDay === null || billingPeriodOf(period, anchorDay).end > fromTime;
    return [...merged.values()].filter((m) => asked(m.period));
  };

  return {
    async deltaStreams(meters, scope) {
      const newest = new Map<string, number>();
      for (const s of (scope ?? []) as readonly ChangedStream[]) if (s.newestWindowStart !== undefined) newest.set(streamKey(s), s.newestWindowStart);
      return (await totals('delta', meters, scope, null, 0)).map(({ key, part, native }) => {
        // Timestamped in the newest window that changed (or, unknown, the newest with usage).
        const ws = newest.get(streamKey(key)) ?? part.latestWindowStart;
        return { tenant: key.tenant, customer: key.customer, meter: key.meter, total: partValue(part), windowStart: ws, windowEnd: ws + WINDOW_MS[native] };
      });
    },

    async absoluteStreams(meters, anchorDay = 1, scope, fromTime = 0) {
      return (await totals('absolute', meters, scope, anchorDay, fromTime)).map(({ key, period, part, native }) => ({
        tenant: key.tenant,
        customer: key.customer,
        meter: key.meter,
        periodStart: period,
        value: partValue(part),
        // The latest window of the period with usage: the push's timestamp goes inside it.
        windowStart: part.latestWindowStart,
        windowEnd: part.latestWindowStart + WINDOW_MS[native],
      }));
    },

    keptBefore() {
      return Math.min(caches.delta.split, caches.absolute.split);
    },

    freshFrom: (mode) => lastFresh[mode],

    forget() {
      caches.delta = emptyCache(clock(), null);
      caches.absolute = emptyCache(clock(), caches.absolute.anchorDay);
    },

    async changedStreams(since, exceptWriter) {
      // Change rows are stamped by their writer just before the INSERT: the caller asks from a
      // little before its previous read, so a row stamped then but visible only later is seen.
      // A customer whose mapping changed: its streams, from their first window (read whole).
      // A push is timestamped in the window changed last (as the change record orders them).
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(min(oldest))) AS oldest,
                 toString(toUnixTimestamp64Milli(argMax(newest, at))) AS newest
          FROM (
            SELECT tenant, customer, meter, oldest_window_start AS oldest, newest_window_start AS newest, changed_at AS at
            FROM ${database}.stream_changes
            WHERE changed_at >= fromUnixTimestamp64Milli({since:Int64})
              AND ({everyWriter:UInt8} = 1 OR written_by != {exceptWriter:String})
            UNION ALL
            SELECT tenant, customer, meter, min(window_start) AS oldest, max(window_start) AS newest, toDateTime64(0, 6, 'UTC') AS at
            FROM ${database}.usage_events
            WHERE disposition = 'counted'
              AND (tenant, customer) IN (SELECT tenant, customer FROM ${database}.customers WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64}))
            GROUP BY tenant, customer, meter)
          GROUP BY tenant, customer, meter`,
        query_params: { since: Math.max(0, Math.floor(since)), everyWriter: exceptWriter === undefined ? 1 : 0, exceptWriter: exceptWriter ?? '' },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string>>();
      return rows.map((r) => ({ tenant: r.tenant!, customer: r.customer!, meter: r.meter!, oldestWindowStart: Number(r.oldest), newestWindowStart: Number(r.newest) }));
    },

    async customerMappings(since) {
      return new Map((await listCustomers(client, database, since)).map((m) => [customerKey(m), m.stripeCustomerId]));
    },
  };
}

function emptyCache(now: number, anchorDay: number | null): SpanCache {
  return { split: splitPoint(now), anchorDay, older: new Map(), complete: new Set(), readWhole: new Set() };
}

function dedupeKeys(keys: readonly StreamKey[]): StreamKey[] {
  return [...new Map(keys.map((k) => [streamKey(k), { tenant: k.tenant, customer: k.customer, meter: k.meter }])).values()];
}
