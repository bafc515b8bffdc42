/**
 * Stripe's meter-event rules, shared by v1 meter events, v2 meter events and the v2 stream,
 * and the event-summary computation. Sources: /work/shared/notes/stripe.md; Stripe docs
 * "Record usage for billing with the API" (timestamps, whole numbers, rate limits) and
 * "Record usage for billing" (pre-aggregated event_time_window); stripe-node 23 type docs.
 */
import type { AcceptedEvent, ErrorReportCode, Formula, Meter } from './state';

export const RULES = {
  /** "within the past 35 calendar days" */
  maxPastSeconds: 35 * 86_400,
  /** "and isn't more than 5 minutes in the future" (clock drift allowance) */
  maxFutureSeconds: 5 * 60,
  /** "more than 15 significant digits -> 400" */
  maxSignificantDigits: 15,
  /** Identifiers: unique "within a rolling 24 hour period" (at least) */
  identifierUniqueMs: 24 * 3_600_000,
  /** Adjustments: "only within 24 h of Stripe receiving the event" */
  cancelWindowMs: 24 * 3_600_000,
  /** v2 stream: "up to 100 events per request" */
  maxStreamEvents: 100,
  /** v2 meter event session: "Authentication tokens are only valid for 15 minutes" */
  sessionTtlMs: 15 * 60_000,
} as const;

export type RuleId =
  | 'no_meter'
  | 'archived_meter'
  | 'no_customer'
  | 'no_value'
  | 'invalid_value'
  | 'too_many_digits'
  | 'timestamp_too_far_in_past'
  | 'timestamp_in_future';

export interface RuleViolation {
  rule: RuleId;
  message: string;
  param: string;
  /** The code Stripe's asynchronous error reports use for this failure. */
  reportCode: ErrorReportCode;
  /** The code of POST /v2/billing/meter_events (v2.error.* schemas). */
  v2Code: string;
}

export interface CheckedEvent {
  meter: Meter;
  customer: string;
  value: bigint;
  rawValue: string;
}

const V2_CODE: Record<RuleId, string> = {
  no_meter: 'no_meter',
  archived_meter: 'archived_meter',
  no_customer: 'payload_no_customer_defined',
  no_value: 'payload_no_value_defined',
  invalid_value: 'payload_invalid_value',
  too_many_digits: 'payload_invalid_value',
  // Not in the v2 meter_events error table; named after the error-report codes.
  timestamp_too_far_in_past: 'timestamp_too_far_in_past',
  timestamp_in_future: 'timestamp_in_future',
};

const REPORT_CODE: Record<RuleId, ErrorReportCode> = {
  no_meter: 'no_meter',
  archived_meter: 'archived_meter',
  no_customer: 'meter_event_no_customer_defined',
  no_value: 'meter_event_invalid_value',
  invalid_value: 'meter_event_invalid_value',
  too_many_digits: 'meter_event_value_too_many_digits',
  timestamp_too_far_in_past: 'timestamp_too_far_in_past',
  timestamp_in_future: 'timestamp_in_future',
};

function violation(rule: RuleId, message: string, param: string): RuleViolation {
  return { rule, message, param, reportCode: REPORT_CODE[rule], v2Code: V2_CODE[rule] };
}

/**
 * Whole numbers only ("The numerical usage value in the payload only accepts whole number
 * values"; negatives are accepted: "If the overall cycle usage is negative, Stripe reports the
 * invoice line item usage quantity as 0"), at most 15 significant digits (leading zeros and the
 * sign do not count).
 */
export function parseWholeNumber(raw: string, param: string): { value: bigint } | RuleViolation {
  if (!/^-?\d+$/.test(raw)) {
    const decimal = /^-?(\d+\.\d*|\.\d+)$/.test(raw);
    return violation('invalid_value', `Invalid value '${raw}' for ${param}: ${decimal ? 'decimal values are not supported, ' : ''}the value must be a whole number.`, param);
  }
  const digits = raw.replace(/^-/, '').replace(/^0+(?=\d)/, '');
  if (digits.length > RULES.maxSignificantDigits) {
    return violation('too_many_digits', `Invalid value '${raw}' for ${param}: the value can have at most ${RULES.maxSignificantDigits} significant digits.`, param);
  }
  return { value: BigInt(raw) };
}

/**
 * The checks Stripe applies to one meter event, in order: the event_name must belong to a meter
 * that is active; the payload must carry the meter's customer key (customer_mapping.event_payload_key,
 * default `stripe_customer_id`) and value key (value_settings.event_payload_key, default `value`;
 * a `count` meter needs no value); the value must be a whole number; the timestamp must lie within
 * the past 35 days and at most 5 minutes ahead.
 */
export function checkMeterEvent(meter: Meter | undefined, eventName: string, payload: Record<string, string>, timestampSec: number, nowSec: number): CheckedEvent | RuleViolation {
  if (!meter) return violation('no_meter', `No active meter was found for event_name '${eventName}'. A meter must exist to submit events.`, 'event_name');
  if (meter.status !== 'active') return violation('archived_meter', `The meter for event_name '${eventName}' (${meter.id}) is inactive. The meter must be active to submit events.`, 'event_name');
  const customerKey = meter.customer_mapping.event_payload_key;
  const customer = payload[customerKey];
  if (customer === undefined || customer === '') {
    return violation('no_customer', `The payload must include the customer key '${customerKey}' (customer_mapping.event_payload_key of meter ${meter.id}).`, `payload[${customerKey}]`);
  }
  const valueKey = meter.value_settings.event_payload_key;
  const rawValue = payload[valueKey];
  let value = 1n;
  if (rawValue === undefined || rawValue === '') {
    if (meter.default_aggregation.formula !== 'count') {
      return violation('no_value', `The payload must include the value key '${valueKey}' (value_settings.event_payload_key of meter ${meter.id}).`, `payload[${valueKey}]`);
    }
  } else {
    const parsed = parseWholeNumber(rawValue, `payload[${valueKey}]`);
    if ('rule' in parsed) return parsed;
    value = parsed.value;
  }
  if (timestampSec < nowSec - RULES.maxPastSeconds) {
    return violation('timestamp_too_far_in_past', `Timestamp ${timestampSec} is too far in the past: it must be within the past 35 days.`, 'timestamp');
  }
  if (timestampSec > nowSec + RULES.maxFutureSeconds) {
    return violation('timestamp_in_future', `Timestamp ${timestampSec} is too far in the future: it can be at most 5 minutes ahead.`, 'timestamp');
  }
  return { meter, customer, value, rawValue: rawValue ?? '1' };
}

export const GROUPING_SECONDS = { hour: 3600, day: 86_400 } as const;

/** Summary times: minute-aligned; with value_grouping_window, hour- or UTC-day-aligned. */
export function alignmentError(start: number, end: number, grouping: 'hour' | 'day' | undefined): { param: string; message: string } | null {
  const unit = grouping ? GROUPING_SECONDS[grouping] : 60;
  const what = grouping === 'day' ? 'day boundaries (00:00 UTC)' : grouping === 'hour' ? 'hour boundaries' : 'minute boundaries';
  if (start % unit !== 0) return { param: 'start_time', message: `start_time must be aligned with ${what}.` };
  if (end % unit !== 0) return { param: 'end_time', message: `end_time must be aligned with ${what}.` };
  if (start >= end) return { param: 'start_time', message: 'start_time must be before end_time.' };
  return null;
}

function aggregate(formula: Formula, evs: AcceptedEvent[]): number {
  if (formula === 'count') return evs.length;
  if (formula === 'last') {
    let last: AcceptedEvent | undefined;
    for (const e of evs) if (!last || e.timestamp > last.timestamp || (e.timestamp === last.timestamp && e.seq > last.seq)) last = e;
    return last ? Number(last.value) : 0;
  }
  return Number(evs.reduce((s, e) => s + e.value, 0n));
}

export interface SummaryWindow {
  start: number;
  end: number;
  value: number;
}

/**
 * Aggregates the accepted, non-cancelled events of `meter` for `customer` with
 * start <= timestamp < end, by the meter's formula. A pre-aggregated meter (event_time_window
 * hour|day) keeps only the newest event received per customer per window ("Stripe only uses the
 * most recent meter event within the hourly or daily window"). Without grouping: one summary
 * for the whole range; with grouping: one per window that has events, newest first (the order of
 * Stripe's documented example).
 */
export function summarize(events: readonly AcceptedEvent[], meter: Meter, customer: string, start: number, end: number, grouping: 'hour' | 'day' | undefined): SummaryWindow[] {
  let evs = events.filter((e) => e.meterId === meter.id && e.customer === customer && e.cancelledAt === null && e.timestamp >= start && e.timestamp < end);
  if (meter.event_time_window) {
    const w = GROUPING_SECONDS[meter.event_time_window];
    const newest = new Map<number, AcceptedEvent>();
    for (const e of evs) {
      const k = Math.floor(e.timestamp / w);
      const cur = newest.get(k);
      if (!cur || e.seq > cur.seq) newest.set(k, e);
    }
    evs = [...newest.values()];
  }
  const formula = meter.default_aggregation.formula;
  if (!grouping) return [{ start, end, value: aggregate(formula, evs) }];
  const g = GROUPING_SECONDS[grouping];
  const buckets = new Map<number, AcceptedEvent[]>();
  for (const e of evs) {
    const k = Math.floor(e.timestamp / g) * g;
    const list = buckets.get(k) ?? [];
    list.push(e);
    buckets.set(k, list);
  }
  return [...buckets.entries()].sort((a, b) => b[0] - a[0]).map(([s, list]) => ({ start: s, end: s + g, value: aggregate(formula, list) }));
}
