import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric the worker exports, defined in this one place. Labels are bounded: meter,
 * reason, outcome, partition — never a tenant, customer or event id.
 */
export function createMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) {
    collectDefaultMetrics({ register: registry, prefix: 'meterline_' });
    // prom-client exports these three as gauges named `_total`, which Prometheus reserves for
    // counters (`promtool check metrics` rejects them); the remaining default metrics stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      registry.removeSingleMetric(`meterline_${name}`);
    }
  }
  const r = [registry];
  return {
    registry,
    eventsConsumed: new Counter({ name: 'meterline_events_consumed_total', help: 'Messages read from the usage topic', registers: r }),
    eventsAccepted: new Counter({
      name: 'meterline_events_accepted_total',
      help: 'Events stored in the ledger for the first time',
      labelNames: ['meter'],
      registers: r,
    }),
    eventsDuplicate: new Counter({
      name: 'meterline_events_duplicate_total',
      help: 'Copies of an already stored event (same tenant and id, same body)',
      labelNames: ['meter'],
      registers: r,
    }),
    eventsConflicting: new Counter({
      name: 'meterline_events_conflicting_total',
      help: 'Copies with the key of a stored event but a different body (first write kept)',
      labelNames: ['meter'],
      registers: r,
    }),
    eventsRedelivered: new Counter({
      name: 'meterline_events_redelivered_total',
      help: 'Messages stored before a crash or rebalance and read again (nothing written)',
      registers: r,
    }),
    eventsRejected: new Counter({
      name: 'meterline_events_rejected_total',
      help: 'Messages dead-lettered, by reason',
      labelNames: ['reason'],
      registers: r,
    }),
    eventsLate: new Counter({
      name: 'meterline_events_late_total',
      help: 'Events behind the watermark: counted within the allowed lateness, or too late (kept in late_events)',
      labelNames: ['meter', 'outcome'],
      registers: r,
    }),
    // Named "aggregation", not "counter": Prometheus' linter reserves type names inside metric names.
    eventToCounterLatency: new Histogram({
      name: 'meterline_event_aggregation_latency_seconds',
      help: 'From an ingest unit being read to its events being durable, hence in their windows\' totals (usage_counters): observed once per unit',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    watermarkDelay: new Gauge({
      name: 'meterline_watermark_delay_seconds',
      help: 'Wall-clock time minus the worker watermark',
      registers: r,
    }),
    pushes: new Counter({
      name: 'meterline_stripe_pushes_total',
      help: 'Pushes to Stripe by outcome (reported, already_reported, failed, retry, shadow, too_old)',
      labelNames: ['meter', 'outcome'],
      registers: r,
    }),
    stripeCalls: new Counter({
      name: 'meterline_stripe_calls_total',
      help: 'HTTP calls to Stripe by status class',
      labelNames: ['status'],
      registers: r,
    }),
    rateLimitWait: new Histogram({
      name: 'meterline_stripe_rate_limit_wait_seconds',
      help: 'Time a push waited for the global Stripe rate limit',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: r,
    }),
    pendingPushes: new Gauge({
      name: 'meterline_stripe_pushes_pending',
      help: 'Pushes left pending after a round of retries, resent by the push cycle with backoff (same identifier)',
      registers: r,
    }),
    oldestPendingAge: new Gauge({
      name: 'meterline_stripe_oldest_pending_push_age_seconds',
      help: 'Age of the oldest pending push (0 when none): usage not yet confirmed billed',
      registers: r,
    }),
    errorReportUnmatched: new Counter({
      name: 'meterline_stripe_error_report_unmatched_total',
      help: "Failures counted by Stripe meter error reports (error_count) beyond the sampled ones matched to a push: a reconcile of the report's window looks for them",
      registers: r,
    }),
    pushBacklog: new Gauge({ name: 'meterline_stripe_push_backlog', help: 'Pushes in flight (sent or waiting to be sent)', registers: r }),
    stripeMeterProblems: new Gauge({
      name: 'meterline_stripe_meter_problems',
      help: 'Meters of meters.yaml held because their Stripe meter is missing, inactive or of the wrong formula (or the meters could not be listed)',
      registers: r,
    }),
    // Gauges of the push ledger's current state (not counters of events): an alert on them stays
    // on until someone settles the pushes (`meterline pushes resolve`), then clears.
    pushesFailed: new Gauge({
      name: 'meterline_stripe_pushes_failed',
      help: 'Pushes whose latest status in the push ledger is failed (usage Stripe will not bill until someone acts), read from ClickHouse every 30 s',
      registers: r,
    }),
    pushesHeld: new Gauge({
      name: 'meterline_stripe_pushes_held',
      help: 'Pushes held after more than 24 h pending (delivery unknown), read from the push ledger in ClickHouse every 30 s',
      registers: r,
    }),
    awaitingMapping: new Gauge({
      name: 'meterline_usage_awaiting_mapping',
      help: 'Streams with usage to push whose customer has no Stripe mapping yet',
      registers: r,
    }),
    reconcileDrift: new Gauge({
      name: 'meterline_reconcile_drift',
      help: 'Last reconcile: largest relative drift between local totals and Stripe',
      labelNames: ['meter'],
      registers: r,
    }),
    batchDuration: new Histogram({
      name: 'meterline_ingest_batch_duration_seconds',
      help: 'Time to process one fetched batch, decode to commit',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: r,
    }),
    insertDuration: new Histogram({
      name: 'meterline_clickhouse_insert_duration_seconds',
      help: 'Time to write one batch to ClickHouse',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
    committedOffset: new Gauge({
      name: 'meterline_ingest_committed_offset',
      help: 'Last committed offset per partition',
      labelNames: ['partition'],
      registers: r,
    }),
    consumerLag: new Gauge({
      name: 'meterline_consumer_lag',
      help: 'Messages behind the end of each partition this worker owns (high watermark minus next offset to read), refreshed per batch and from the broker every few seconds',
      labelNames: ['partition'],
      registers: r,
    }),
    assignedPartitions: new Gauge({
      name: 'meterline_consumer_assigned_partitions',
      help: 'Partitions of the usage topic assigned to this worker',
      registers: r,
    }),
    lastBatchTime: new Gauge({
      name: 'meterline_ingest_last_batch_timestamp_seconds',
      help: 'Unix time of the last batch stored and committed',
      registers: r,
    }),
    ready: new Gauge({
      name: 'meterline_ready',
      help: '1 while /health/ready answers ready (Kafka and ClickHouse reachable, partitions assigned, consumption not stalled), else 0',
      registers: r,
    }),
    dedupeStoreRows: new Gauge({
      name: 'meterline_dedupe_store_rows',
      help: 'Rows of the ledger (usage_events) in the months the dedupe lookup reads',
      registers: r,
    }),
    dedupeStoreBytes: new Gauge({
      name: 'meterline_dedupe_store_bytes',
      help: 'Bytes on disk of the ledger (usage_events) in the months the dedupe lookup reads',
      registers: r,
    }),
    dedupeFilterChecked: new Counter({
      name: 'meterline_dedupe_filter_checked_total',
      help: 'Event keys checked against the in-memory dedupe filter',
      registers: r,
    }),
    dedupeFilterMaybe: new Counter({
      name: 'meterline_dedupe_filter_maybe_total',
      help: 'Keys the dedupe filter could not prove absent (looked up in the ledger); checked − maybe = lookups saved',
      registers: r,
    }),
    dedupeOwnKeys: new Counter({
      name: 'meterline_dedupe_own_keys_total',
      help: 'Keys the filter could not prove absent that this worker decided new itself lately (being written or just stored): answered without a ledger lookup',
      registers: r,
    }),
    dedupeFilterKeys: new Gauge({ name: 'meterline_dedupe_filter_keys', help: 'Keys held by the in-memory dedupe filter', registers: r }),
    dedupeFilterBytes: new Gauge({ name: 'meterline_dedupe_filter_bytes', help: 'Memory of the in-memory dedupe filter (its bit arrays)', registers: r }),
    dedupeFilterFalsePositiveRate: new Gauge({
      name: 'meterline_dedupe_filter_false_positive_ratio',
      help: 'Expected share of absent keys the dedupe filter answers "maybe" for, at its current fill',
      registers: r,
    }),
    dedupeFilterCoverageStart: new Gauge({
      name: 'meterline_dedupe_filter_coverage_start_timestamp_seconds',
      help: 'Event time from which the dedupe filter holds every ledger key; events older than this plus the dedupe window are always looked up',
      registers: r,
    }),
    dedupeFilterBuildSeconds: new Gauge({
      name: 'meterline_dedupe_filter_build_seconds',
      help: 'Time taken at start-up to load the dedupe filter from the ledger',
      registers: r,
    }),
    alertsEmitted: new Counter({
      name: 'meterline_alerts_emitted_total',
      help: 'Usage alerts (allotment thresholds crossed) published to the alerts topic by this process',
      labelNames: ['meter', 'threshold'] as const,
      registers: r,
    }),
    alertWebhookDeliveries: new Counter({
      name: 'meterline_alert_webhook_deliveries_total',
      help: 'Alert webhook attempts, by outcome (delivered = 2xx)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The HTTP gateway's metrics (its own process and registry). Labels are bounded: route (the
 * route's pattern, "other" for unknown paths), status code, outcome — never a tenant or key.
 */
export function createGatewayMetrics(opts: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'meterline_gateway_' });
  const r = [registry];
  return {
    registry,
    requests: new Counter({
      name: 'meterline_gateway_requests_total',
      help: 'HTTP requests answered, by route and status code (401 invalid key, 413 too large, 415 wrong content type, 429 rate-limited, …)',
      labelNames: ['route', 'status'],
      registers: r,
    }),
    events: new Counter({
      name: 'meterline_gateway_events_total',
      help: 'Events received over HTTP by outcome: accepted (acknowledged by Kafka), rejected (invalid, with a reason), failed (Kafka did not acknowledge; the client was told to retry)',
      labelNames: ['outcome'],
      registers: r,
    }),
    requestDuration: new Histogram({
      name: 'meterline_gateway_request_duration_seconds',
      help: 'Time from a request arriving to its answer, by route',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: r,
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
