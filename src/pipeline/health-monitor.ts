import type { LedgerSize } from '../adapters/clickhouse/ledger-size';
import type { GroupOffsetReader } from '../adapters/kafka/group-lag';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { decideReadiness, initialProgress, observeBatch, observeLag, partitionLag, stalledPartitions, type ProgressState, type Readiness } from '../runtime/readiness';
import { waitingAfter, type IngestWorker } from './ingest-worker';

export interface HealthMonitorDeps {
  /** The topic's ends and the group's commits, read independently of the consume loop. */
  readonly offsets: GroupOffsetReader;
  /** Resolves when ClickHouse answers a query, throws otherwise. */
  readonly pingClickHouse: () => Promise<void>;
  /** Size of the dedupe store (the ledger within the dedupe window); absent: not exported. */
  readonly dedupeStoreSize?: () => Promise<LedgerSize>;
  /** Pushes by their latest status in the push ledger (failed and held become gauges); absent: not exported. */
  readonly pushStatusCounts?: () => Promise<Record<string, number>>;
  readonly metrics?: Metrics;
  readonly clock: () => number;
  readonly logger: Logger;
  /** A partition with messages waiting and no progress for this long makes the worker not ready. */
  readonly stallMs: number;
  /** How often offsets and ClickHouse are checked (default: a quarter of stallMs, 0.5–5 s). */
  readonly pollMs?: number;
  readonly dedupeStoreEveryMs?: number;
  /** How often the push ledger's failed and held pushes are counted (default 30 s). */
  readonly pushStatusEveryMs?: number;
  /** A check that has not answered after this long counts as failed (default 10 s). */
  readonly checkTimeoutMs?: number;
}

export interface HealthMonitor {
  /** Starts watching a running worker: its batches, assignment and connection. */
  attach(worker: IngestWorker): void;
  /** Ready for traffic: see readiness.ts. Not ready until a worker is attached and checked once. */
  readiness(): Readiness;
  /** Alive unless the consumer crashed for good (a restart is the remedy). */
  liveness(): Readiness;
  stop(): Promise<void>;
}

/**
 * The edge around readiness.ts: polls broker offsets and ClickHouse on a timer, records batch
 * progress from the worker, and keeps `meterline_consumer_lag`, `meterline_ready`, the
 * dedupe-store gauges and the push ledger's failed / held gauges current. Lag is exported only for owned partitions, so summing the gauge
 * over all workers of a group counts every partition once.
 */
export function startHealthMonitor(deps: HealthMonitorDeps): HealthMonitor {
  const log = deps.logger.child({ module: 'health' });
  const pollMs = deps.pollMs ?? Math.min(5_000, Math.max(500, deps.stallMs / 4));
  const sizeEveryMs = deps.dedupeStoreEveryMs ?? 10_000;
  const timeoutMs = deps.checkTimeoutMs ?? 10_000;
  let worker: IngestWorker | null = null;
  let progress: ProgressState = initialProgress();
  let exported = new Set<number>();
  let kafkaOk = false;
  let clickhouseOk = false;
  let checked = false;
  let current: Readiness = { ready: false, reasons: ['starting'] };
  let lastSizeAt = -Infinity;
  const pushStatusEveryMs = deps.pushStatusEveryMs ?? 30_000;
  let lastPushStatusAt = -Infinity;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const setLag = (lags: ReadonlyMap<number, number>) => {
    for (const [partition, lag] of lags) deps.metrics?.consumerLag.set({ partition: String(partition) }, lag);
    for (const p of exported) if (!lags.has(p)) deps.metrics?.consumerLag.remove({ partition: String(p) });
    exported = new Set(lags.keys());
  };

  const decide = () => {
    const status = worker?.status();
    const next: Readiness =
      !status || !checked
        ? { ready: false, reasons: ['starting'] }
        : decideReadiness({
            kafkaReachable: kafkaOk && status.connected,
            clickhouseReachable: clickhouseOk,
            consuming: status.running,
            assignedPartitions: status.partitions.length,
            stalled: stalledPartitions(progress, deps.clock(), deps.stallMs),
          });
    if (next.ready !== current.ready) {
      if (next.ready) log.info('ready');
      else log.warn({ reasons: next.reasons }, 'not ready');
    }
    current = next;
    deps.metrics?.ready.set(next.ready ? 1 : 0);
    deps.metrics?.assignedPartitions.set(status?.partitions.length ?? 0);
  };

  const poll = async () => {
    const owned = new Set(worker?.status().partitions ?? []);
    try {
      const offsets = await withTimeout(deps.offsets.read(), timeoutMs, 'reading offsets');
      const lags = new Map<number, number>();
      for (const o of offsets) if (owned.has(o.partition)) lags.set(o.partition, partitionLag(o.high, o.low, o.committed));
      progress = observeLag(progress, lags, deps.clock());
      setLag(lags);
      if (!kafkaOk) log.info('kafka reachable');
      kafkaOk = true;
    } catch (err) {
      if (kafkaOk || !checked) log.warn({ err }, 'kafka offsets unreadable');
      kafkaOk = false;
    }
    try {
      await withTimeout(deps.pingClickHouse(), timeoutMs, 'pinging ClickHouse');
      clickhouseOk = true;
    } catch (err) {
      if (clickhouseOk || !checked) log.warn({ err }, 'clickhouse unreachable');
      clickhouseOk = false;
    }
    if (deps.dedupeStoreSize && clickhouseOk && deps.clock() - lastSizeAt >= sizeEveryMs) {
      lastSizeAt = deps.clock();
      try {
        const size = await withTimeout(deps.dedupeStoreSize(), timeoutMs, 'sizing the dedupe store');
        deps.metrics?.dedupeStoreRows.set(size.rows);
        deps.metrics?.dedupeStoreBytes.set(size.bytes);
      } catch (err) {
        log.warn({ err }, 'could not size the dedupe store');
      }
    }
    if (deps.pushStatusCounts && clickhouseOk && deps.clock() - lastPushStatusAt >= pushStatusEveryMs) {
      lastPushStatusAt = deps.clock();
      try {
        // Every worker reads the same ledger, so each exports the same current state.
        const counts = await withTimeout(deps.pushStatusCounts(), timeoutMs, 'counting pushes by status');
        deps.metrics?.pushesFailed.set(counts.failed ?? 0);
        deps.metrics?.pushesHeld.set(counts.held ?? 0);
      } catch (err) {
        log.warn({ err }, 'could not count failed and held pushes');
      }
    }
    checked = worker !== null;
    decide();
  };

  const loop = () => {
    if (stopped) return;
    poll()
      .catch((err) => log.warn({ err }, 'health check failed'))
      .finally(() => {
        if (!stopped) timer = setTimeout(loop, pollMs);
      });
  };
  loop();

  return {
    attach(w) {
      worker = w;
      w.onUnit((_outcome, positions) => {
        const now = deps.clock();
        for (const [partition, position] of positions) {
          const lag = waitingAfter(position);
          progress = observeBatch(progress, partition, lag, now);
          deps.metrics?.consumerLag.set({ partition: String(partition) }, lag);
          exported.add(partition);
        }
        deps.metrics?.lastBatchTime.set(now / 1000);
      });
    },
    readiness: () => current,
    liveness: () => (worker && !worker.status().running ? { ready: false, reasons: ['consumer crashed and was not restarted'] } : { ready: true, reasons: [] }),
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await deps.offsets.close().catch(() => undefined);
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}
