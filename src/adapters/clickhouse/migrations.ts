import type { ClickHouseClient } from '@clickhouse/client';
import { PROJECTION_AGGREGATES, VIEW_WINDOW_AGGREGATES, windowStateSql } from './window-aggregates';

/**
 * Every table, created idempotently: each statement is safe to run any number of times, so
 * `meterline migrate` and start-up both simply run them all, in order.
 *
 * Every statement names its database explicitly (`{db}.table`): the embedded engine ignores
 * the client's default database, and explicit names keep the two modes identical.
 */
export interface Migration {
  readonly name: string;
  readonly sql: (db: string) => string;
  /** Runs first; the statement is skipped when it resolves false. */
  readonly when?: (client: ClickHouseClient, db: string) => Promise<boolean>;
}

export const MIGRATIONS: readonly Migration[] = [
  { name: 'database', sql: (db) => `CREATE DATABASE IF NOT EXISTS ${db}` },
  {
    // The ledger: one row per accepted event, first write wins. Ordered by the dedupe key so
    // an exact (tenant, id) lookup reads a few granules; partitioned by event month so window
    // scans skip old months. Rows are never updated or deleted by the pipeline.
    name: 'usage_events',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.usage_events (
        tenant String,
        id String,
        customer String,
        meter LowCardinality(String),
        value Decimal(38, 9),
        event_time DateTime64(3, 'UTC'),
        properties Map(String, String),
        source Nullable(String),
        body_hash String COMMENT 'sha256 of the canonical event body: equal key, different hash = conflict',
        meter_aggregation LowCardinality(String) COMMENT 'the meter definition the event was counted under',
        meter_window LowCardinality(String),
        meter_allowed_lateness_ms UInt64,
        meter_definition_hash LowCardinality(String),
        disposition LowCardinality(String) DEFAULT 'counted' COMMENT 'counted | too_late, decided when first stored',
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        ingested_at DateTime64(6, 'UTC')
      )
      ENGINE = MergeTree
      PARTITION BY toYYYYMM(event_time)
      ORDER BY (tenant, id)
      SETTINGS index_granularity = 1024`,
  },
  {
    name: 'usage_events.idx_event_time',
    sql: (db) => `ALTER TABLE ${db}.usage_events ADD INDEX IF NOT EXISTS idx_event_time event_time TYPE minmax GRANULARITY 1`,
  },
  {
    // Which worker stored the row ('' for other writers: redrive, replay): a worker's dedupe
    // filter catches up with every key it did not store itself.
    name: 'usage_events.ingested_by',
    sql: (db) => `ALTER TABLE ${db}.usage_events ADD COLUMN IF NOT EXISTS ingested_by LowCardinality(String) DEFAULT ''`,
  },
  {
    // The dedupe filter's catch-up reads the keys others stored in the last seconds.
    name: 'usage_events.idx_ingested_at',
    sql: (db) => `ALTER TABLE ${db}.usage_events ADD INDEX IF NOT EXISTS idx_ingested_at ingested_at TYPE minmax GRANULARITY 1`,
  },
  {
    name: 'usage_events.window_start',
    sql: (db) => `
      ALTER TABLE ${db}.usage_events ADD COLUMN IF NOT EXISTS window_start DateTime64(3, 'UTC')
        DEFAULT multiIf(meter_window = 'minute', toStartOfInterval(event_time, INTERVAL 1 MINUTE),
                        meter_window = 'day', toStartOfInterval(event_time, INTERVAL 1 DAY),
                        toStartOfInterval(event_time, INTERVAL 1 HOUR))
        COMMENT 'start of the event-time window the event counts in (written by the worker)'`,
  },
  {
    name: 'usage_events.meter_unique_property',
    sql: (db) => `ALTER TABLE ${db}.usage_events ADD COLUMN IF NOT EXISTS meter_unique_property String DEFAULT ''`,
  },
  {
    // Exact per-window aggregates kept inside every ledger part, written in the same atomic
    // INSERT as the rows themselves: a window's totals are read by merging partial states at
    // query time (no background merge is relied upon), so counters are recomputed from the
    // deduplicated ledger in milliseconds whatever its size.
    name: 'usage_events.projection_by_window',
    sql: (db) => `
      ALTER TABLE ${db}.usage_events ADD PROJECTION IF NOT EXISTS by_window (
        SELECT tenant, customer, meter, window_start, disposition,
               ${PROJECTION_AGGREGATES}
        GROUP BY tenant, customer, meter, window_start, disposition
      )`,
  },
  {
    // The same per-window aggregates ordered by time first. A unit of recent events touches the
    // windows of every active customer but only a few window starts: read through this order
    // (ClickHouse picks the projection with the fewest marks for the key set), recomputing them
    // reads those few window starts, not every window ever counted. by_window (stream first)
    // serves the pusher's per-stream reads. Parts written before this projection existed are
    // read from the table until a merge rewrites them.
    name: 'usage_events.projection_by_window_time',
    sql: (db) => `
      ALTER TABLE ${db}.usage_events ADD PROJECTION IF NOT EXISTS by_window_time (
        SELECT tenant, window_start, customer, meter, disposition,
               ${PROJECTION_AGGREGATES}
        GROUP BY tenant, window_start, customer, meter, disposition
      )`,
  },
  {
    // Events stored as too late for their window (decided when first stored): kept, explained, never counted.
    name: 'late_events',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.late_events (
        tenant String,
        id String,
        customer String,
        meter LowCardinality(String),
        value Decimal(38, 9),
        event_time DateTime64(3, 'UTC'),
        window_start DateTime64(3, 'UTC'),
        window_end DateTime64(3, 'UTC'),
        watermark DateTime64(3, 'UTC'),
        allowed_lateness_ms UInt64,
        reason String,
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        ingested_at DateTime64(6, 'UTC')
      )
      ENGINE = ReplacingMergeTree
      ORDER BY (topic, partition, offset)`,
  },
  {
    // Before 0.2 the counters were a table the worker rewrote (usage_counters, ReplacingMergeTree).
    // They are a view of the ledger now (below): the table holds nothing the ledger does not,
    // so it is dropped once, and only when it is that old table.
    name: 'usage_counters.drop_legacy_table',
    when: async (client, db) => {
      const rs = await client.query({
        query: `SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'usage_counters'`,
        query_params: { db },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<{ engine: string }>();
      return row !== undefined && row.engine !== 'View';
    },
    sql: (db) => `DROP TABLE IF EXISTS ${db}.usage_counters`,
  },
  {
    // The worker's event-time watermark, saved at most once a second while it moves: window
    // states (open / closed / final) are computed from it where they are read. The highest
    // saved value stands (states never go back), as a settle pass once left them.
    name: 'event_time_watermark',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.event_time_watermark (
        topic LowCardinality(String),
        watermark DateTime64(3, 'UTC'),
        updated_at DateTime64(6, 'UTC')
      )
      ENGINE = ReplacingMergeTree(watermark)
      ORDER BY topic`,
  },
  {
    // The counters users query: one row per (tenant, customer, meter, window) with its exact
    // value and its state, computed at read time from the ledger (through its by_window
    // projection) and the persisted watermark. Nothing is stored, so nothing can drift; filter
    // on tenant / customer / meter / window_start and ClickHouse reads only those windows.
    name: 'usage_counters.view',
    sql: (db) => {
      const windowState = windowStateSql('window_end', 'allowed_lateness_ms', `(SELECT max(watermark) FROM ${db}.event_time_watermark)`);
      return `
      CREATE VIEW IF NOT EXISTS ${db}.usage_counters AS
      SELECT tenant, customer, meter, window_start,
             window_start + toIntervalMillisecond(window_ms) AS window_end,
             aggregation,
             multiIf(aggregation = 'sum', sum_value, aggregation = 'count', toDecimal128(events, 9),
                     aggregation = 'max', max_value, aggregation = 'last', last_value, toDecimal128(unique_count, 9)) AS value,
             events, allowed_lateness_ms,
             ${windowState} AS state,
             last_ingested_at,
             -- Rises with every change (the ledger only grows, states only advance), as the old table's did.
             events * 4 + multiIf(state = 'open', 0, state = 'closed', 1, 2) AS version
      FROM (
        SELECT tenant, customer, meter, window_start, ${VIEW_WINDOW_AGGREGATES}
        FROM ${db}.usage_events
        WHERE disposition = 'counted'
        GROUP BY tenant, customer, meter, window_start
      )`;
    },
  },
  {
    // Which streams each ingest unit changed: the pusher's durable change record (for the pusher
    // of another worker, and after a restart), written with the unit's ledger rows. Read by
    // changed_at, so a read covers the last seconds, not the history; kept two days.
    name: 'stream_changes',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.stream_changes (
        tenant String,
        customer String,
        meter LowCardinality(String),
        oldest_window_start DateTime64(3, 'UTC'),
        newest_window_start DateTime64(3, 'UTC'),
        changed_at DateTime64(6, 'UTC')
      )
      ENGINE = MergeTree
      ORDER BY changed_at
      TTL toDateTime(changed_at) + INTERVAL 2 DAY`,
  },
  {
    // Highest event time stored per partition: restores watermarks after a restart.
    name: 'watermarks',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.watermarks (
        topic LowCardinality(String),
        partition UInt32,
        max_event_time DateTime64(3, 'UTC'),
        updated_at DateTime64(6, 'UTC')
      )
      ENGINE = ReplacingMergeTree(max_event_time)
      ORDER BY (topic, partition)`,
  },
  {
    // Every copy that was not stored: plain duplicates (same body) and conflicts (same key,
    // different body; the copy is kept in full so the conflict can be explained). Keyed by the
    // copy's own offset, so reprocessing a batch after a crash records nothing twice (count
    // with FINAL or uniqExact(topic, partition, offset)).
    name: 'duplicate_events',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.duplicate_events (
        kind LowCardinality(String) COMMENT 'duplicate | conflict',
        tenant String,
        id String,
        body_hash String,
        original_body_hash String,
        original_topic LowCardinality(String),
        original_partition UInt32,
        original_offset UInt64,
        event String COMMENT 'conflicts only: the rejected copy as canonical JSON',
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        detected_at DateTime64(6, 'UTC')
      )
      ENGINE = ReplacingMergeTree
      ORDER BY (topic, partition, offset)`,
  },
  {
    // Dead letters, mirrored from the DLQ topic so they can be listed and redriven. A redrive
    // writes a new version of the row with status 'redriven' (read with FINAL).
    name: 'rejected_events',
    sql: (db) => `
      CREATE TABLE IF NOT EXISTS ${db}.rejected_events (
        reason_code LowCardinality(String),
        reason String,
        raw_payload String COMMENT 'original message bytes, base64',
        message_key Nullable(String),
        tenant Nullable(String),
        event_id Nullable(String),
        topic LowCardinality(String),
        partition UInt32,
        offset UInt64,
        rejected_at DateTime64(6, 'UTC'),
        status LowCardinality(String) DEFAULT 'rejected' COMMENT 'rejected | redriven',
        version UInt64 DEFAULT 0
      )
      ENGINE = ReplacingMergeTree(version)
      ORDER BY (topic, partition, offset)`,
  },
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

export async function migrate(client: ClickHouseClient, database: string): Promise<string[]> {
  assertIdentifier(database);
  const applied: string[] = [];
  for (const m of MIGRATIONS) {
    if (m.when && !(await m.when(client, database))) continue;
    await client.command({ query: m.sql(database) });
    applied.push(m.name);
  }
  return applied;
}

export function assertIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`invalid ClickHouse identifier ${JSON.stringify(name)}`);
}
