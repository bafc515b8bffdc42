import { createHash } from 'node:crypto';
import type { AllotmentCatalog } from './allotments';
import { formatDecimal, SCALE } from './decimal';

/** A customer's exact total of one meter over one billing period (from the ledger). */
export interface PeriodTotal {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly periodStart: number;
  readonly periodEnd: number;
  /** Nano-units (scale 9). */
  readonly totalUnits: bigint;
}

/** One threshold of one allotment crossed in one billing period: worth exactly one alert. */
export interface AlertCrossing {
  readonly alertId: string;
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly periodStart: number;
  readonly periodEnd: number;
  /** Percent of the limit, nano-units. */
  readonly thresholdUnits: bigint;
  readonly limitUnits: bigint;
  /** The period total when the crossing was seen (at or above the threshold). */
  readonly totalUnits: bigint;
}

const HUNDRED_PERCENT_UNITS = 100n * 10n ** BigInt(SCALE);

/**
 * The alert id: a function of (tenant, customer, meter, period, threshold) only, so every worker,
 * every restart and every resend names one crossing identically. (The limit is not part of it:
 * raising a limit mid-period does not raise a second alert for a percentage already alerted.)
 */
export function alertIdOf(k: { tenant: string; customer: string; meter: string; periodStart: number; thresholdUnits: bigint }): string {
  const text = [k.tenant, k.customer, k.meter, String(k.periodStart), formatDecimal(k.thresholdUnits)].join('\u0000');
  return `alrt_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
}

/** Whether `total` reached `percent` % of `limit`, exactly: total × 100 ≥ limit × percent. */
export function reached(totalUnits: bigint, limitUnits: bigint, thresholdUnits: bigint): boolean {
  return totalUnits * HUNDRED_PERCENT_UNITS >= limitUnits * thresholdUnits;
}

/**
 * The crossings to alert for: every threshold reached by a period total under the allotment in
 * force for its customer, minus those already in the alert ledger (`recorded`, by alert id). Pure.
 * A total that later falls (a `max` or `last` meter, say) never withdraws an alert.
 */
export function newCrossings(catalog: AllotmentCatalog, totals: readonly PeriodTotal[], recorded: ReadonlySet<string>): AlertCrossing[] {
  const out: AlertCrossing[] = [];
  for (const t of totals) {
    const allotment = catalog.allotmentFor(t.tenant, t.customer, t.meter);
    if (!allotment) continue;
    for (const thresholdUnits of allotment.thresholds) {
      if (!reached(t.totalUnits, allotment.limitUnits, thresholdUnits)) break; // ascending: the rest are higher
      const alertId = alertIdOf({ ...t, thresholdUnits });
      if (recorded.has(alertId)) continue;
      out.push({
        alertId,
        tenant: t.tenant,
        customer: t.customer,
        meter: t.meter,
        periodStart: t.periodStart,
        periodEnd: t.periodEnd,
        thresholdUnits,
        limitUnits: allotment.limitUnits,
        totalUnits: t.totalUnits,
      });
    }
  }
  return out;
}
