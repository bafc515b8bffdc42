import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';

export interface Accounting {
  /** Messages that are events in the ledger (first copies). */
  readonly accepted: number;
  readonly duplicates: number;
  readonly conflicts: number;
  /** Dead letters still rejected (redriven ones are in `accepted`/`duplicates` now). */
  readonly rejected: number;
  readonly redriven: number;
  /** Source offsets recorded in more than one place: must be 0. */
  readonly classifiedTwice: number;
}

export interface CustomerTotal {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly events: number;
  /** Exact decimal text: every stored event, counted or set aside as too late. */
  readonly value: string;
  /** The events that count (disposition 'counted'), and their exact sum. */
  readonly countedEvents: number;
  readonly countedValue: string;
  /**
   * The counters (the usage_counters view, served by the ledger's by_window projection) summed over windows: for sum and count meters
   * they must equal the counted events and sum — the check that counters explain the ledger.
   */
  readonly counterEvents: number;
  readonly counterValue: string;
}

/**
 * Explains where every consumed message went: accepted + duplicates + conflicts + rejected
 * must equal what was produced (design rule 7). Each message is identified by its source
 * offset, so re-processing after a crash cannot inflate any term.
 */
export async function accounting(client: ClickHouseClient, database: string, topic: string): Promise<Accounting> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `
      WITH
        ledger AS (SELECT topic, partition, offset, 'accepted' AS place FROM ${database}.usage_events WHERE topic = {topic:String}),
        copies AS (SELECT topic, partition, offset, kind AS place FROM ${database}.duplicate_events FINAL WHERE topic = {topic:String}),
        dead AS (SELECT topic, partition, offset, 'rejected' AS place FROM ${database}.rejected_events FINAL WHERE topic = {topic:String} AND status = 'rejected'),
        everything AS (SELECT * FROM ledger UNION ALL SELECT * FROM copies UNION ALL SELECT * FROM dead)
      SELECT
        countIf(place = 'accepted') AS accepted,
        countIf(place = 'duplicate') AS duplicates,
        countIf(place = 'conflict') AS conflicts,
        countIf(place = 'rejected') AS rejected,
        (SELECT count() FROM ${database}.rejected_events FINAL WHERE topic = {topic:String} AND status = 'redriven') AS redriven,
        (SELECT count() FROM (SELECT partition, offset FROM everything GROUP BY partition, offset HAVING count() > 1)) AS classified_twice
      FROM everything`,
    query_params: { topic },
    format: 'JSONEachRow',
  });
  const [r] = await rs.json<Record<string, string | number>>();
  return {
    accepted: Number(r?.accepted ?? 0),
    duplicates: Number(r?.duplicates ?? 0),
    conflicts: Number(r?.conflicts ?? 0),
    rejected: Number(r?.rejected ?? 0),
    redriven: Number(r?.redriven ?? 0),
    classifiedTwice: Number(r?.classified_twice ?? 0),
  };
}

/** Event count and exact sum per (tenant, customer, meter), straight from the ledger. */
export async function customerTotals(client: ClickHouseClient, database: string): Promise<CustomerTotal[]> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `
      SELECT l.tenant AS tenant, l.customer AS customer, l.meter AS meter, l.events AS events, l.total AS value,
             l.counted_events AS counted_events, l.counted_value AS counted_value,
             c.counter_events AS counter_events, toString(c.counter_total) AS counter_value
      FROM (
        SELECT tenant, customer, meter, count() AS events, toString(sum(value)) AS total,
               countIf(disposition = 'counted') AS counted_events, toString(sumIf(value, disposition = 'counted')) AS counted_value
        FROM ${database}.usage_events
        GROUP BY tenant, customer, meter
      ) AS l
      LEFT JOIN (
        SELECT tenant, customer, meter, sum(events) AS counter_events, sum(value) AS counter_total
        FROM ${database}.usage_counters
        GROUP BY tenant, customer, meter
      ) AS c ON c.tenant = l.tenant AND c.customer = l.customer AND c.meter = l.meter
      ORDER BY tenant, customer, meter
      SETTINGS join_use_nulls = 0`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<Record<string, string | number>>();
  return rows.map((r) => ({
    tenant: String(r.tenant),
    customer: String(r.customer),
    meter: String(r.meter),
    events: Number(r.events),
    value: String(r.value),
    countedEvents: Number(r.counted_events),
    countedValue: String(r.counted_value),
    counterEvents: Number(r.counter_events),
    counterValue: String(r.counter_value),
  }));
}

/** Pushes by their latest status (pending, reported, failed, shadow, held): 'pending' settles to 0 once Stripe has answered. */
export async function pushStatusCounts(client: ClickHouseClient, database: string): Promise<Record<string, number>> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `SELECT status, count() AS n FROM ${database}.stripe_pushes FINAL GROUP BY status ORDER BY status`,
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ status: string; n: string | number }>();
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}
