import type { ClickHouseClient } from '@clickhouse/client';
import type { CustomerMapping } from '../../domain/customers';
import { assertIdentifier } from './migrations';
import { dateTime64Micro } from './format';

/** customers is a ReplacingMergeTree keyed by (tenant, customer): the latest import wins (read with FINAL). */
export async function importCustomers(client: ClickHouseClient, database: string, mappings: readonly CustomerMapping[], now: number): Promise<void> {
  assertIdentifier(database);
  if (mappings.length === 0) return;
  await client.insert({
    table: `${database}.customers`,
    values: mappings.map((m) => ({ tenant: m.tenant, customer: m.customer, stripe_customer_id: m.stripeCustomerId, updated_at: dateTime64Micro(now) })),
    format: 'JSONEachRow',
  });
}

/** Every mapping, or (with `since`, ms) those imported at or after it. */
export async function listCustomers(client: ClickHouseClient, database: string, since?: number): Promise<CustomerMapping[]> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `SELECT tenant, customer, stripe_customer_id FROM ${database}.customers FINAL
            WHERE updated_at >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY tenant, customer`,
    query_params: { since: Math.max(0, Math.floor(since ?? 0)) },
    format: 'JSONEachRow',
  });
  const rows = await rs.json<{ tenant: string; customer: string; stripe_customer_id: string }>();
  return rows.map((r) => ({ tenant: r.tenant, customer: r.customer, stripeCustomerId: r.stripe_customer_id }));
}
