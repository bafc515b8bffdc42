import type { Migration } from '../migrations';

/** Operations: replay runs, the gateway's API keys, and usage alerts. */
export const OPERATION_TABLES: readonly Migration[] = [
  {
    // One row per `meterline replay` run (latest version wins): an interrupted run is found
    // here and resumed from its consumer group's committed offsets, up to the same end offsets.
    name: 'replay_runs',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.replay_runs (
        run_id String,
        topic String,
        group_id String,
        range_from Nullable(Int64) COMMENT 'event-time lower bound, ms (inclusive)',
        range_to Nullable(Int64) COMMENT 'event-time upper bound, ms (exclusive)',
        end_offsets String COMMENT 'JSON: partition -> offset (exclusive) snapshotted at the start',
        status LowCardinality(String) COMMENT 'running | finished',
        started_at DateTime64(6, 'UTC'),
        updated_at DateTime64(6, 'UTC'),
        summary String DEFAULT '' COMMENT 'JSON summary of the last invocation'
      )
      ENGINE = ReplacingMergeTree(updated_at)
      ORDER BY run_id`,
  },
  {
    // Tenant API keys of the HTTP gateway: only sha256 of each key is kept (see
    // src/gateway/api-key.ts). Revoking writes a newer version with revoked_at set.
    name: 'api_keys',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.api_keys (
        id String,
        tenant String,
        name String,
        key_sha256 String,
        created_at DateTime64(3, 'UTC'),
        revoked_at Nullable(DateTime64(3, 'UTC')),
        version UInt64
      )
      ENGINE = ReplacingMergeTree(version)
      ORDER BY id`,
  },
  {
    // The alert ledger: one row per (tenant, customer, meter, billing period, threshold), the
    // latest state winning (pending → published → delivered; see alert-store.ts). `pending` is
    // written before the alert is published, so a crash in between is found and settled.
    name: 'usage_alerts',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.usage_alerts (
        alert_id String,
        tenant String,
        customer String,
        meter LowCardinality(String),
        period_start DateTime64(3, 'UTC'),
        period_end DateTime64(3, 'UTC'),
        threshold_percent Decimal(38, 9),
        allotment Decimal(38, 9),
        period_total Decimal(38, 9) COMMENT 'the period total when the crossing was detected',
        status LowCardinality(String) COMMENT 'pending | published | delivered',
        delivery_attempts UInt32,
        last_error String,
        created_at DateTime64(3, 'UTC'),
        updated_at DateTime64(6, 'UTC'),
        version UInt64
      )
      ENGINE = ReplacingMergeTree(version)
      ORDER BY (tenant, customer, meter, period_start, threshold_percent)`,
  },
];
