import type { PeriodTotal } from '../../domain/alert-crossings';
import { parseDecimal } from '../../domain/decimal';
import { billingPeriodOf } from '../../domain/windows';
import type { ChangedStream, StreamStore } from './stream-store';

/** What the alerter reads: exact billing-period totals, and a way to read them afresh. */
export interface PeriodTotalsReader {
  /**
   * Exact totals of the given streams (every stream of `meters` when undefined), in the billing
   * periods from the one holding `fromTime` on. A scoped stream is read from its oldest changed
   * window's span: its recent windows only when that window is recent and its older span is
   * kept, else whole (see stream-store.ts).
   */
  read(q: { meters: readonly string[]; scope: readonly ChangedStream[] | undefined; fromTime: number }): Promise<PeriodTotal[]>;
  /** Drops what is kept in memory (a new term): the next unscoped read reads the periods whole. */
  forget(): void;
}

/**
 * Period totals from a stream store of the alerter's own, the one the pusher reads absolute
 * meters through. A cycle then reads its changed streams' windows from the start of yesterday,
 * not every window of the month: its cost follows the usage that changed, not the billing
 * period (issue 16, rule 5). The older span of each stream read is kept in memory: one
 * aggregate per (stream, period) of the allotments' meters.
 */
export function periodTotalsFrom(streams: Pick<StreamStore, 'absoluteStreams' | 'forget'>, anchorDay: number): PeriodTotalsReader {
  return {
    async read(q) {
      const rows = await streams.absoluteStreams(q.meters, anchorDay, q.scope, q.fromTime);
      return rows.map((r) => {
        const d = parseDecimal(r.value);
        if (!d.ok) throw new Error(`period total: ${d.reason}`);
        return { tenant: r.tenant, customer: r.customer, meter: r.meter, periodStart: r.periodStart, periodEnd: billingPeriodOf(r.periodStart, anchorDay).end, totalUnits: d.units };
      });
    },
    forget: () => streams.forget(),
  };
}
