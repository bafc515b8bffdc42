import type { Migration } from '../migrations';
import { LATEST_WINDOW, PROJECTION_AGGREGATES, WINDOW_AGGREGATES } from '../window-aggregates';
import { LEDGER_MERGE_SETTING } from './merge-settings';
import { dropStaleProjection, materializeMissingProjection } from './projection-upkeep';

/** The aggregates both per-window projections must keep (a ledger of an older version may lack one). */
const CURRENT_AGGREGATES = [...Object.values(WINDOW_AGGREGATES), LATEST_WINDOW];

/**
 * The ledger and the tables beside it: every message read ends in exactly one of them —
 * usage_events (accepted, with its indexes and per-window projections), late_events (too late
 * for a final window), duplicate_events (copies and conflicts), rejected_events (dead letters).
 */
export const LEDGER_TABLES: readonly Migration[] = [
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
  LEDGER_MERGE_SETTING,
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
  // Ledgers created before `last` became argMaxIf (twelfth session), or before the projections
  // kept LATEST_WINDOW (fourteenth), keep the old per-window projections: drop them so they are
  // added anew below, then rewritten (after the ADDs).
  dropStaleProjection('by_window', CURRENT_AGGREGATES),
  dropStaleProjection('by_window_time', CURRENT_AGGREGATES),
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
    // The same per-window aggregates ordered by time first, for reads bounded by time rather than
    // by stream: a full push cycle's list of customers with usage since a date, `meterline query`
    // over a tenant's customers, usage_counters filtered on window_start. ClickHouse picks the
    // projection with the fewest marks for a query; by_window (stream first) serves the pusher's
    // per-stream reads. Old parts without it: see materializeMissingProjection below.
    name: 'usage_events.projection_by_window_time',
    sql: (db) => `
      ALTER TABLE ${db}.usage_events ADD PROJECTION IF NOT EXISTS by_window_time (
        SELECT tenant, window_start, customer, meter, disposition,
               ${PROJECTION_AGGREGATES}
        GROUP BY tenant, window_start, customer, meter, disposition
      )`,
  },
  {
    // The dedupe filter's catch-up (keys other workers stored in the last seconds) through the
    // keys ordered by when they were stored. The table's own order is (tenant, id), and merges
    // spread a second's keys over every granule of a merged part, so the idx_ingested_at index
    // skips nothing there: without this projection each catch-up (one a second) read the whole
    // ledger's ingested_at, a cost growing with history (issue 16, rule 5). Written in the same
    // atomic INSERT as the rows. Costs about the keys' size again on disk (tenant and id
    // strings). Old parts without it: see materializeMissingProjection below.
    name: 'usage_events.projection_by_ingested',
    sql: (db) => `
      ALTER TABLE ${db}.usage_events ADD PROJECTION IF NOT EXISTS by_ingested (
        SELECT tenant, id, ingested_at, ingested_by
        ORDER BY ingested_at
      )`,
  },
  // Parts written before a projection existed (or before it was redefined) get it in the
  // background, so every read is served by a projection again once the rewrite is done.
  materializeMissingProjection('by_window'),
  materializeMissingProjection('by_window_time'),
  materializeMissingProjection('by_ingested'),
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
];
