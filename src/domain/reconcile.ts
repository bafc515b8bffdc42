import { floorUnits, formatDecimal, parseDecimal } from './decimal';

/**
 * One stream — (tenant, customer, delta meter) — over a reconcile range, compared as what was
 * pushed, not as what was metered per window: a delta is timestamped in the latest window that
 * changed, so it may carry usage of earlier windows (and a late event's delta lands in its own
 * window). What Stripe should hold for a range is therefore what the push ledger reported with
 * timestamps in it; usage not pushed at all yet is the other way Stripe can fall short.
 */
export interface DriftInput {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  /** Exact usage of the windows starting in the range (decimal text; informative). */
  readonly local: string;
  /** Whole units of `reported` pushes timestamped in the range. */
  readonly reported: bigint;
  /** Of `reported`, units sent so recently that Stripe's summaries may not show them yet. */
  readonly recentlyReported: bigint;
  /** Units of `pending` pushes timestamped in the range: Stripe may or may not hold them. */
  readonly pending: bigint;
  /** Whole units of the stream's total that no push carries yet (counted when its newest window is in the range). */
  readonly unpushed: bigint;
  /** What Stripe's event summaries hold for the range; null in shadow mode. */
  readonly stripe: bigint | null;
}

export interface DriftRow {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly local: string;
  readonly reported: string;
  readonly stripe: string | null;
  /** Units that may not have settled at Stripe yet (recently reported, or pending): never drift. */
  readonly unsettled: string;
  readonly unpushed: string;
  /** Units Stripe is short (positive) or over (negative) beyond what is unsettled: unpushed usage included. */
  readonly drift: string;
  readonly relative: number;
  readonly ok: boolean;
}

const abs = (v: bigint) => (v < 0n ? -v : v);

/**
 * Stripe's summaries lag behind accepted events, so Stripe may hold anywhere from `reported`
 * minus what was reported recently up to `reported` plus what is pending: within that band the
 * difference is unsettled, not drift. Beyond it, and for usage not pushed at all, it is drift;
 * a row drifts when that exceeds `epsilon` relative to what Stripe should hold (at least one unit).
 * In shadow mode the ledger stands in for Stripe.
 */
export function computeDrift(input: DriftInput, epsilon: number): DriftRow {
  const local = parseDecimal(input.local);
  if (!local.ok) throw new Error(`bad local total ${input.local}`);
  const billed = input.stripe ?? input.reported;
  const gap = input.reported - billed;
  const settledGap = gap > input.recentlyReported ? gap - input.recentlyReported : gap < -input.pending ? gap + input.pending : 0n;
  const drift = input.unpushed + settledGap;
  const expected = input.reported + input.unpushed;
  const base = abs(expected) > 1n ? abs(expected) : 1n;
  const relative = Number(abs(drift)) / Number(base);
  return {
    tenant: input.tenant,
    customer: input.customer,
    meter: input.meter,
    local: formatDecimal(local.units),
    reported: input.reported.toString(),
    stripe: input.stripe === null ? null : input.stripe.toString(),
    unsettled: (gap - settledGap).toString(),
    unpushed: input.unpushed.toString(),
    drift: drift.toString(),
    relative,
    ok: drift === 0n || relative <= epsilon,
  };
}

/** Whole units of a running total not carried by any push yet. */
export function unpushedUnits(total: string, pushed: bigint): bigint {
  const t = parseDecimal(total);
  if (!t.ok) throw new Error(`bad total ${total}`);
  return floorUnits(t.units) - pushed;
}
