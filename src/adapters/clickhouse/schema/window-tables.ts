import type { Migration } from '../migrations';
import { VIEW_WINDOW_AGGREGATES, windowStateSql } from '../window-aggregates';

/**
 * Windows and event time: the persisted watermarks, the per-window view users query
 * (usage_counters, an aggregate of the ledger), and the change record the pusher reads.
 */
export const WINDOW_TABLES: readonly Migration[] = [
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
    // Which worker wrote the change (its ingested_by; '' for other writers): the pusher learns
    // its own worker's changes in process (pipeline/change-feed.ts) and reads only the others'.
    name: 'stream_changes.written_by',
    sql: (db) => `ALTER TABLE ${db}.stream_changes ADD COLUMN IF NOT EXISTS written_by LowCardinality(String) DEFAULT ''`,
  },
  {
    // The change record of the ledger's own INSERTs: ClickHouse groups each inserted block by
    // stream as it writes the rows, so an ingest unit no longer encodes and inserts a row per
    // stream it changed (~20,000 a unit under a backlog: BENCHMARKS.md, sixteenth session).
    // Stamped with the rows' ingested_at, which a writer takes just before its INSERT. A crash
    // between the ledger's part and this view's leaves the unit's offsets uncommitted: re-read, its
    // events are 'redelivered', and ingest records their streams itself (ingest-batch.ts).
    name: 'stream_changes.from_ledger',
    sql: (db) => `
      CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.stream_changes_from_ledger TO ${db}.stream_changes AS
      SELECT tenant, customer, meter,
             min(window_start) AS oldest_window_start, max(window_start) AS newest_window_start,
             max(ingested_at) AS changed_at, ingested_by AS written_by
      FROM ${db}.usage_events
      GROUP BY tenant, customer, meter, ingested_by`,
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
];
