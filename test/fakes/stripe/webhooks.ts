/**
 * Thin-event webhooks for meter errors, built and signed the way Stripe does it.
 *
 * Signing (stripe-node 23 Webhooks.js, which verifies it): header `Stripe-Signature: t=<unix
 * seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with the whole `whsec_...` secret>`;
 * the default tolerance is 300 s against the receiver's clock.
 *
 * Thin events (stripe-node's parseEventNotification): a body with `object: 'v2.core.event'`, id,
 * type, created, livemode and, for meter events, `related_object {id, type, url}`; no `data`.
 * `notification.fetchEvent()` then GETs /v2/core/events/:id, which returns the full event whose
 * `data` is, for both types (V1BillingMeterErrorReportTriggeredEvent.Data and
 * V1BillingMeterNoMeterFoundEvent.Data): `{developer_message_summary, reason: {error_count,
 * error_types: [{code, error_count, sample_errors: [{error_message, request: {identifier}}]}]},
 * validation_start, validation_end}`.
 */
import { createHmac } from 'node:crypto';
import { rfc3339, rid, type AsyncError, type ErrorReportCode } from './state';

export type MeterErrorEventType = 'v1.billing.meter.error_report_triggered' | 'v1.billing.meter.no_meter_found';

export interface ErrorTypeInput {
  code: ErrorReportCode;
  /** The failing events; each becomes a sample error. */
  samples: Array<{ identifier: string; message?: string }>;
  /** Defaults to the number of samples. */
  errorCount?: number;
}

export interface MeterErrorReportInput {
  /** The meter (related object). Required for error_report_triggered; absent for no_meter_found. */
  meterId?: string;
  errorTypes: ErrorTypeInput[];
  /** Validation window, ms; defaults to the hour before now. */
  validationStart?: number;
  validationEnd?: number;
}

export interface WebhookDelivery {
  /** The full event (what GET /v2/core/events/:id returns). */
  event: Record<string, unknown>;
  /** The thin notification (the webhook body, parsed). */
  notification: Record<string, unknown>;
  /** The exact body to POST. */
  payload: string;
  /** The `Stripe-Signature` header value. */
  signature: string;
  headers: Record<string, string>;
}

export function signPayload(payload: string, secret: string, timestampSec: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampSec}.${payload}`, 'utf8').digest('hex');
  return `t=${timestampSec},v1=${v1}`;
}

export function buildMeterErrorEvent(type: MeterErrorEventType, input: MeterErrorReportInput, nowMs: number): { event: Record<string, unknown>; notification: Record<string, unknown> } {
  if (type === 'v1.billing.meter.error_report_triggered' && !input.meterId) throw new Error('error_report_triggered needs the meterId of its related object');
  const errorTypes = input.errorTypes.map((t) => ({
    code: t.code,
    error_count: t.errorCount ?? t.samples.length,
    sample_errors: t.samples.map((s) => ({ error_message: s.message ?? `Meter event ${s.identifier} failed validation: ${t.code}`, request: { identifier: s.identifier } })),
  }));
  const errorCount = errorTypes.reduce((n, t) => n + t.error_count, 0);
  const notification: Record<string, unknown> = {
    id: rid('evt_test_', 18),
    object: 'v2.core.event',
    type,
    livemode: false,
    created: rfc3339(nowMs),
  };
  if (input.meterId) notification.related_object = { id: input.meterId, type: 'billing.meter', url: `/v1/billing/meters/${input.meterId}` };
  const event = {
    ...notification,
    data: {
      developer_message_summary: `There ${errorCount === 1 ? 'is 1 invalid event' : `are ${errorCount} invalid events`}`,
      reason: { error_count: errorCount, error_types: errorTypes },
      validation_start: rfc3339(input.validationStart ?? nowMs - 3_600_000),
      validation_end: rfc3339(input.validationEnd ?? nowMs),
    },
  };
  return { event, notification };
}

/**
 * Groups asynchronous failures the way Stripe's reports do: per meter (none -> no_meter_found),
 * per code, with every failure counted in `error_count` and at most `maxSamples` of them listed.
 */
export function reportsFromAsyncErrors(
  errors: readonly AsyncError[],
  opts: { maxSamples?: number; sampleRequest?: 'event_identifier' | 'idempotency_key' } = {},
): Array<{ type: MeterErrorEventType; input: MeterErrorReportInput }> {
  const maxSamples = opts.maxSamples ?? 3;
  const requestId = (e: AsyncError) => (opts.sampleRequest === 'idempotency_key' ? (e.idempotencyKey ?? e.identifier) : e.identifier);
  const byMeter = new Map<string | null, Map<ErrorReportCode, AsyncError[]>>();
  for (const e of errors) {
    const codes = byMeter.get(e.meterId) ?? new Map<ErrorReportCode, AsyncError[]>();
    codes.set(e.code, [...(codes.get(e.code) ?? []), e]);
    byMeter.set(e.meterId, codes);
  }
  return [...byMeter.entries()].map(([meterId, codes]) => ({
    type: meterId === null ? 'v1.billing.meter.no_meter_found' : 'v1.billing.meter.error_report_triggered',
    input: {
      ...(meterId === null ? {} : { meterId }),
      errorTypes: [...codes.entries()].map(([code, list]) => ({ code, errorCount: list.length, samples: list.slice(0, maxSamples).map((e) => ({ identifier: requestId(e), message: e.message })) })),
    },
  }));
}
