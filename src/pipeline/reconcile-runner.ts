import type Stripe from 'stripe';
import type { ClickHouseClient } from '@clickhouse/client';
import type { ReadPacing } from '../adapters/stripe/read-retry';
import type { MeterCatalog } from '../domain/meters';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import type { UnexplainedFailures } from './error-reports';
import { reconcile, type ReconcileReport } from './reconcile';

/** The periodic reconcile looks this far back. */
export const PERIODIC_RANGE_MS = 48 * 3_600_000;
/**
 * A report's validation window is in Stripe's receipt time; a push sent in it is timestamped in
 * its stream's latest window (or, for a late event, an earlier one): the reconcile of a report
 * starts this long before the window.
 */
export const REPORT_LOOKBACK_MS = 24 * 3_600_000;

/** The worker's reconciles: every few minutes over the last 48 h, and after an error report that sampled only part of its failures. */
export function createReconcileRunner(deps: {
  ch: ClickHouseClient;
  database: string;
  meters: MeterCatalog;
  stripe: Stripe;
  pacing: ReadPacing;
  metrics?: Metrics;
  logger: Logger;
  clock?: () => number;
  epsilon?: number;
}) {
  const log = deps.logger.child({ module: 'reconcile' });
  const clock = deps.clock ?? Date.now;
  const epsilon = deps.epsilon ?? 0.005;
  const run = (from: number, to: number, settleMs?: number): Promise<ReconcileReport> =>
    reconcile(deps.ch, deps.database, deps.meters, deps.stripe, { from, to, epsilon, pacing: deps.pacing, clock, ...(deps.metrics ? { metrics: deps.metrics } : {}), ...(settleMs !== undefined ? { settleMs } : {}) });
  return {
    periodic(): Promise<ReconcileReport> {
      const to = clock();
      return run(to - PERIODIC_RANGE_MS, to);
    },
    /**
     * Stripe has validated every event it received before the window's end: pushes reported by
     * then are settled, so a shortfall there is the failures the report did not sample.
     */
    async afterErrorReport(u: UnexplainedFailures): Promise<ReconcileReport> {
      const report = await run(u.validationStart - REPORT_LOOKBACK_MS, u.validationEnd + 60_000, Math.max(0, clock() - u.validationEnd));
      const short = report.drift.filter((d) => !d.ok);
      log.warn(
        { unexplained: u.count, from: new Date(report.range.from).toISOString(), to: new Date(report.range.to).toISOString(), drifting: short.map((d) => ({ tenant: d.tenant, customer: d.customer, meter: d.meter, drift: d.drift })) },
        'reconcile after a Stripe error report that sampled only part of its failures',
      );
      return report;
    },
  };
}
