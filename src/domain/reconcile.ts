import { floorUnits, formatDecimal, parseDecimal } from './decimal';

export interface DriftInput {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  /** Exact local total of the range (decimal text). */
  readonly local: string;
  /** Whole units the push ledger reports as delivered for the range. */
  readonly reported: bigint;
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
  /** floor(local) − stripe (or − reported in shadow mode). */
  readonly drift: string;
  readonly relative: number;
  readonly ok: boolean;
}

/**
 * Drift between what was metered and what Stripe bills. Stripe takes whole units, so up to one
 * unit below the local total is the carried remainder, not drift. A row drifts when the whole-
 * unit difference exceeds `epsilon` relative to the local total (and is at least one unit).
 */
export function computeDrift(input: DriftInput, epsilon: number): DriftRow {
  const local = parseDecimal(input.local);
  if (!local.ok) throw new Error(`bad local total ${input.local}`);
  const expected = floorUnits(local.units);
  const billed = input.stripe ?? input.reported;
  const diff = expected - billed;
  const base = expected < 0n ? -expected : expected;
  const relative = Number(diff < 0n ? -diff : diff) / Number(base > 1n ? base : 1n);
  return {
    tenant: input.tenant,
    customer: input.customer,
    meter: input.meter,
    local: formatDecimal(local.units),
    reported: input.reported.toString(),
    stripe: input.stripe === null ? null : input.stripe.toString(),
    drift: diff.toString(),
    relative,
    ok: diff === 0n || relative <= epsilon,
  };
}
