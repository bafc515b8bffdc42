import { STRIPE_MAX_AGE_MS } from './push-plan';

/** Events of a backfill that are older than a limit: how many, and the first lines. */
export interface AgeBucket {
  readonly count: number;
  readonly firstLines: readonly number[];
}

export interface BackfillAgeReport {
  /** Older than DEDUPE_WINDOW_DAYS: copies are recognised only within that many days of each other. */
  readonly olderThanDedupeWindow: AgeBucket;
  /** Older than Stripe's 35 days: stored and counted, but Stripe refuses them as meter events. */
  readonly olderThanStripeLimit: AgeBucket;
  readonly oldest: string | null;
}

/**
 * Collects the ages of backfilled events (pure; time passed in). Both limits matter to a user
 * loading history: past Stripe's limit usage can be stored, counted and queried, but not billed
 * through meter events (those pushes end as failed `too_old`, listed by `meterline reconcile`).
 */
export function createBackfillAgeReport(now: number, dedupeWindowMs: number, maxListed = 5) {
  const dedupe = { count: 0, firstLines: [] as number[] };
  const stripe = { count: 0, firstLines: [] as number[] };
  let oldest: number | null = null;
  return {
    add(timestamp: number, line: number): void {
      oldest = oldest === null ? timestamp : Math.min(oldest, timestamp);
      const age = now - timestamp;
      for (const [bucket, limit] of [
        [dedupe, dedupeWindowMs],
        [stripe, STRIPE_MAX_AGE_MS],
      ] as const) {
        if (age <= limit) continue;
        bucket.count += 1;
        if (bucket.firstLines.length < maxListed) bucket.firstLines.push(line);
      }
    },
    report(): BackfillAgeReport {
      return { olderThanDedupeWindow: { ...dedupe }, olderThanStripeLimit: { ...stripe }, oldest: oldest === null ? null : new Date(oldest).toISOString() };
    },
  };
}

/** The warnings a person reads before trusting a backfill, one per line (empty: nothing to say). */
export function backfillWarnings(r: BackfillAgeReport, dedupeWindowDays: number): string[] {
  const lines = (b: AgeBucket) => `lines ${b.firstLines.join(', ')}${b.count > b.firstLines.length ? ', …' : ''}`;
  const out: string[] = [];
  if (r.olderThanStripeLimit.count > 0) {
    out.push(
      `warning: ${r.olderThanStripeLimit.count} events are older than Stripe's 35 days (${lines(r.olderThanStripeLimit)}): ` +
        `they are stored and counted, but cannot be billed through meter events (their pushes fail as too_old; see meterline reconcile)`,
    );
  }
  if (r.olderThanDedupeWindow.count > 0) {
    out.push(
      `warning: ${r.olderThanDedupeWindow.count} events are older than the dedupe window of ${dedupeWindowDays} days (${lines(r.olderThanDedupeWindow)}): ` +
        `copies of them are recognised only when their event times lie within ${dedupeWindowDays} days of each other`,
    );
  }
  return out;
}
