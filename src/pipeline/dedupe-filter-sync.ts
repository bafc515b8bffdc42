import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerKeySource, type LedgerKeySource } from '../adapters/clickhouse/ledger-keys';
import type { Config } from '../config/config';
import { createDedupeFilter, type DedupeFilter, type DedupeFilterOptions } from '../domain/dedupe-filter';
import { dedupeKey } from '../domain/keys';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';

/** Event times up to this old (beyond the dedupe window) are still proven absent after start-up. */
export const FILTER_LOOKBACK_MS = 86_400_000;
/** How often keys stored by other workers are read into the filter (and at every rebalance). */
export const CATCH_UP_INTERVAL_MS = 1_000;
/**
 * Each catch-up re-reads this far back: a unit's rows carry the time it was decided, and its
 * INSERT may land a little later. Re-adding a key is harmless.
 */
const CATCH_UP_OVERLAP_MS = 10_000;

export interface SyncedDedupeFilter {
  readonly filter: DedupeFilter;
  /**
   * Before a unit is decided: makes sure the filter knows every key others stored before a read
   * that started less than CATCH_UP_INTERVAL_MS ago (a fresh read right after a rebalance), reading
   * when needed; the next read starts in the background once half the interval has passed.
   */
  catchUp(): Promise<void>;
  /** Partitions moved (perhaps from another worker): the next unit waits for a catch-up. */
  rebalanced(): void;
  /** Exports size, fill and coverage. */
  report(): void;
}

/**
 * Builds the filter from the ledger (every key within the dedupe window plus FILTER_LOOKBACK_MS)
 * and keeps it in step with keys other workers store. Correct across restarts (rebuilt from the
 * ledger, the record) and rebalances (a full catch-up before the next unit).
 */
export async function startDedupeFilter(deps: {
  readonly options: DedupeFilterOptions;
  readonly keys: LedgerKeySource;
  /** This worker's `ingested_by`: its own keys are recorded at decision time, not caught up. */
  readonly ingestedBy: string;
  readonly clock: () => number;
  readonly metrics?: Metrics;
  readonly logger: Logger;
}): Promise<SyncedDedupeFilter> {
  const log = deps.logger.child({ module: 'dedupe-filter' });
  const started = deps.clock();
  const coverageStart = started - deps.options.dedupeWindowMs - FILTER_LOOKBACK_MS;
  const filter = createDedupeFilter(deps.options, coverageStart);
  const loaded = await deps.keys.load(coverageStart, (tenant, id) => filter.record(dedupeKey(tenant, id), started));
  const buildSeconds = (deps.clock() - started) / 1000;
  deps.metrics?.dedupeFilterBuildSeconds.set(buildSeconds);
  // Keys stored while the build read the ledger are picked up by the first catch-up.
  // `lastCatchUp`: when the last completed read started (everything stored before it is known).
  let lastCatchUp = started;
  let due = true;
  let reading: Promise<void> | null = null;
  const report = () => {
    const s = filter.stats();
    deps.metrics?.dedupeFilterKeys.set(s.keys);
    deps.metrics?.dedupeFilterBytes.set(s.bytes);
    deps.metrics?.dedupeFilterFalsePositiveRate.set(s.falsePositiveRate);
    deps.metrics?.dedupeFilterCoverageStart.set(s.coverageStart / 1000);
  };
  /** One read of the keys others stored since the last one (a read already under way is shared). */
  const read = (): Promise<void> => {
    reading ??= (async () => {
      const startedAt = deps.clock();
      try {
        const keys = await deps.keys.ingestedSince(lastCatchUp - CATCH_UP_OVERLAP_MS, deps.ingestedBy);
        for (const [tenant, id] of keys) filter.record(dedupeKey(tenant, id), startedAt);
        lastCatchUp = startedAt;
        report();
      } finally {
        reading = null;
      }
    })();
    return reading;
  };
  report();
  log.info({ loaded, buildSeconds, ...filter.stats() }, 'dedupe filter built from the ledger');
  return {
    filter,
    async catchUp() {
      if (due) {
        // After a rebalance: a read that starts now, not one started before it.
        if (reading) await reading.catch(() => undefined);
        await read();
        due = false;
        return;
      }
      const age = deps.clock() - lastCatchUp;
      if (age < CATCH_UP_INTERVAL_MS) {
        // Fresh enough for this unit. Past half the interval the next read starts in the
        // background, so the unit that needs it usually finds it done (or nearly).
        if (age >= CATCH_UP_INTERVAL_MS / 2 && !reading) {
          read().catch((err: unknown) => log.warn({ err }, 'dedupe filter catch-up failed; the next unit reads again'));
        }
        return;
      }
      await read();
    },
    rebalanced() {
      due = true;
    },
    report,
  };
}

/** The filter as configured (DEDUPE_FILTER_KEYS, DEDUPE_FILTER_BITS_PER_KEY); undefined when turned off. */
export async function startDedupeFilterFromConfig(
  config: Pick<Config, 'ingest' | 'clickhouse'>,
  client: ClickHouseClient,
  deps: { readonly ingestedBy: string; readonly clock: () => number; readonly metrics?: Metrics; readonly logger: Logger },
): Promise<SyncedDedupeFilter | undefined> {
  const { keys, bitsPerKey } = config.ingest.dedupeFilter;
  if (keys === 0) return undefined;
  return startDedupeFilter({
    ...deps,
    options: { capacity: keys, bitsPerKey, dedupeWindowMs: config.ingest.dedupeWindowDays * 86_400_000, maxFutureSkewMs: config.ingest.maxFutureSkewMs },
    keys: createLedgerKeySource(client, config.clickhouse.database),
  });
}
