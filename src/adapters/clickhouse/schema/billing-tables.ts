import type { Migration } from '../migrations';

/** Billing: the push ledger (what was sent to Stripe, per window) and the customer mappings. */
export const BILLING_TABLES: readonly Migration[] = [
  {
    // The push ledger: every meter event meterline sends (or would send, in shadow mode), one
    // row version per state change, read with FINAL. Written 'pending' before the call to
    // Stripe, so a crash between the two resends the same identifier; never deleted.
    name: 'stripe_pushes',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.stripe_pushes (
        identifier String,
        tenant String,
        customer String,
        meter LowCardinality(String),
        mode LowCardinality(String) COMMENT 'delta | absolute',
        event_name String,
        stripe_customer_id String,
        window_start DateTime64(3, 'UTC') COMMENT 'window (delta) or billing period (absolute) the value belongs to',
        value Decimal(38, 0),
        pushed_from Decimal(38, 0),
        pushed_to Decimal(38, 0),
        event_timestamp DateTime('UTC'),
        status LowCardinality(String) COMMENT 'pending | reported | failed | shadow | held | resolved',
        attempts UInt32,
        last_error String,
        created_at DateTime64(6, 'UTC'),
        updated_at DateTime64(6, 'UTC'),
        version UInt64
      )
      ENGINE = ReplacingMergeTree(version)
      ORDER BY (tenant, customer, meter, identifier)`,
  },
  {
    // Customer mapping: (tenant, customer) -> Stripe customer. Latest import wins.
    name: 'customers',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.customers (
        tenant String,
        customer String,
        stripe_customer_id String,
        updated_at DateTime64(6, 'UTC')
      )
      ENGINE = ReplacingMergeTree(updated_at)
      ORDER BY (tenant, customer)`,
  },
];
