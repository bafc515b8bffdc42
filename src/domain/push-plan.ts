import { createHash } from 'node:crypto';
import { floorUnits, parseDecimal } from './decimal';

/**
 * What the pusher should send to Stripe for one stream — a (tenant, customer, meter) — given
 * its local total and what was already pushed. Pure.
 *
 * Delta meters (sum, count → a Stripe meter with formula `sum`): push `floor(total) − pushed`,
 * where `total` is the running total over all windows. The fractional remainder is carried,
 * never rounded away: the sum pushed always equals floor(local total) once pushes settle.
 * Absolute meters (max, last, unique_count → formula `last`): push the billing period's value
 * whenever it changes.
 */
export const STRIPE_MAX_AGE_MS = 35 * 86_400_000;
/**
 * How long a push may stay pending and still be resent (Stripe keeps identifiers unique for at
 * least 24 h; past that a pending push is held, never resent blindly).
 */
export const RESEND_HORIZON_MS = 24 * 3_600_000;
/**
 * Margin under Stripe's 35 days. Stripe checks the timestamp on receipt, and a push planned now
 * may be resent (same identifier, same timestamp) until RESEND_HORIZON_MS later: the margin
 * covers that horizon, plus an hour for clock skew and queueing, so a resend is never refused
 * as too old.
 */
export const STRIPE_AGE_MARGIN_MS = RESEND_HORIZON_MS + 3_600_000;
export const STRIPE_MAX_FUTURE_MS = 5 * 60_000;

export interface StreamKey {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
}

export interface PlannedPush extends StreamKey {
  readonly identifier: string;
  readonly eventName: string;
  readonly stripeCustomerId: string;
  /** The window (or billing period, for absolute meters) the value is attributed to. */
  readonly windowStart: number;
  /** Whole number to send. */
  readonly value: bigint;
  /** Unix seconds, inside the window and within Stripe's accepted range. */
  readonly timestamp: number;
  readonly mode: 'delta' | 'absolute';
  /** Cumulative pushed before and after (delta), or previous and new period value (absolute). */
  readonly pushedFrom: bigint;
  readonly pushedTo: bigint;
}

export type PlanResult =
  | { readonly kind: 'nothing' }
  | { readonly kind: 'awaiting_mapping' }
  | { readonly kind: 'push'; readonly push: PlannedPush }
  | { readonly kind: 'too_old'; readonly push: PlannedPush; readonly reason: string };

/**
 * Deterministic, ≤ 100 characters: the same push after a timeout or a crash carries the same
 * identifier, so Stripe keeps it once. Different pushes of a stream differ in their cumulative
 * range (pushed-from → pushed-to), so two different values never share an identifier.
 */
export function pushIdentifier(k: StreamKey, windowStart: number, from: bigint, to: bigint, mode: 'delta' | 'absolute'): string {
  const digest = createHash('sha256').update(JSON.stringify([k.tenant, k.customer, k.meter, windowStart, String(from), String(to), mode])).digest('hex');
  return `ml_${digest.slice(0, 48)}`;
}

/** A second inside [windowStart, windowEnd), no later than `now`: Stripe's accepted range checked by the caller. */
export function pushTimestamp(windowStart: number, windowEnd: number, now: number): number {
  const latest = Math.min(windowEnd - 1000, now);
  return Math.floor(Math.max(windowStart, latest) / 1000);
}

export interface DeltaInput extends StreamKey {
  readonly eventName: string;
  readonly stripeCustomerId: string | null;
  /** Exact decimal text: the running total over all the stream's windows. */
  readonly total: string;
  /** Whole units already pushed (pending, reported or settled as failed). */
  readonly pushed: bigint;
  /** The window whose change triggered this push (the latest updated one). */
  readonly windowStart: number;
  readonly windowEnd: number;
}

/**
 * A stream's total or period value in whole units (floored): what planDelta and planAbsolute
 * compare with what was pushed. (The planner asks first, so a stream with nothing new costs no plan.)
 */
export function wholeUnitsOf(value: string): bigint {
  const parsed = parseDecimal(value);
  if (!parsed.ok) throw new Error(`bad value ${value}: ${parsed.reason}`);
  return floorUnits(parsed.units);
}

export function planDelta(input: DeltaInput, now: number): PlanResult {
  const target = wholeUnitsOf(input.total);
  if (target === input.pushed) return { kind: 'nothing' };
  if (input.stripeCustomerId === null) return { kind: 'awaiting_mapping' };
  const push: PlannedPush = {
    tenant: input.tenant,
    customer: input.customer,
    meter: input.meter,
    identifier: pushIdentifier(input, input.windowStart, input.pushed, target, 'delta'),
    eventName: input.eventName,
    stripeCustomerId: input.stripeCustomerId,
    windowStart: input.windowStart,
    value: target - input.pushed,
    timestamp: pushTimestamp(input.windowStart, input.windowEnd, now),
    mode: 'delta',
    pushedFrom: input.pushed,
    pushedTo: target,
  };
  return tooOld(push, now) ?? { kind: 'push', push };
}

export interface AbsoluteInput extends StreamKey {
  readonly eventName: string;
  readonly stripeCustomerId: string | null;
  /** Billing period (calendar month, UTC) the value covers. */
  readonly periodStart: number;
  readonly periodEnd: number;
  /** Exact decimal text: the period's value so far (max / last / unique count). */
  readonly value: string;
  /** Last value pushed for this period, or null. */
  readonly lastPushed: bigint | null;
  /** The latest window of the period with usage: the timestamp goes inside it. */
  readonly windowStart: number;
  readonly windowEnd: number;
}

export function planAbsolute(input: AbsoluteInput, now: number): PlanResult {
  // Stripe takes whole numbers: an absolute value is reported by its integer part.
  const value = wholeUnitsOf(input.value);
  if (value === input.lastPushed) return { kind: 'nothing' };
  if (input.stripeCustomerId === null) return { kind: 'awaiting_mapping' };
  const from = input.lastPushed ?? -1n;
  const push: PlannedPush = {
    tenant: input.tenant,
    customer: input.customer,
    meter: input.meter,
    identifier: pushIdentifier(input, input.periodStart, from, value, 'absolute'),
    eventName: input.eventName,
    stripeCustomerId: input.stripeCustomerId,
    windowStart: input.periodStart,
    value,
    timestamp: pushTimestamp(input.windowStart, input.windowEnd, now),
    mode: 'absolute',
    pushedFrom: from,
    pushedTo: value,
  };
  return tooOld(push, now) ?? { kind: 'push', push };
}

function tooOld(push: PlannedPush, now: number): PlanResult | undefined {
  if (push.timestamp * 1000 >= now - (STRIPE_MAX_AGE_MS - STRIPE_AGE_MARGIN_MS)) return undefined;
  return {
    kind: 'too_old',
    push,
    reason: `timestamp_too_far_in_past: window ${new Date(push.windowStart).toISOString()} is older than Stripe's 35 days; ${push.value} units cannot be billed as meter events`,
  };
}
