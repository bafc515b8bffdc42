import { randomBytes } from 'node:crypto';

/**
 * Stripe's meter error reports (`v1.billing.meter.error_report_triggered`, `…no_meter_found`),
 * read into what the pusher can act on. Pure, except for the random part of a new key.
 *
 * A report counts every failed event (`reason.error_count`, and per error type) but lists only a
 * sample of them (`sample_errors[]`, each with `error_message` and `request.identifier`). stripe-node
 * 23 documents `request.identifier` as "the request idempotency key": it may hold the meter event's
 * identifier or the Idempotency-Key of the request that carried it. meterline sends every v1 meter
 * event with an Idempotency-Key that starts with the push identifier, so either way a sample names
 * its push. Failures beyond the samples cannot be named: reconcile over the report's window finds them.
 */
export interface ErrorReportSample {
  readonly code: string;
  readonly message: string;
  /** What Stripe put in `request.identifier`. */
  readonly requestIdentifier: string;
}

export interface ErrorReport {
  /** Every failed event the report counts (sampled or not). */
  readonly errorCount: number;
  readonly samples: readonly ErrorReportSample[];
  /** The period Stripe validated (ms), when the report says. */
  readonly validationStart: number | null;
  readonly validationEnd: number | null;
}

interface RawData {
  reason?: {
    error_count?: number;
    error_types?: { code?: string; error_count?: number; sample_errors?: { error_message?: string; request?: { identifier?: string } }[] }[];
  };
  validation_start?: string;
  validation_end?: string;
}

const time = (v: string | undefined): number | null => {
  const t = v === undefined ? NaN : Date.parse(v);
  return Number.isFinite(t) ? t : null;
};

export function parseErrorReport(data: unknown): ErrorReport {
  const d = (data ?? {}) as RawData;
  const types = d.reason?.error_types ?? [];
  const samples: ErrorReportSample[] = [];
  for (const t of types) {
    for (const s of t.sample_errors ?? []) {
      const id = s.request?.identifier;
      if (id) samples.push({ code: t.code ?? 'unknown_error', message: s.error_message ?? '', requestIdentifier: id });
    }
  }
  const perType = types.reduce((n, t) => n + (t.error_count ?? t.sample_errors?.length ?? 0), 0);
  return {
    errorCount: Math.max(d.reason?.error_count ?? perType, samples.length),
    samples,
    validationStart: time(d.validation_start),
    validationEnd: time(d.validation_end),
  };
}

/** Separates the push identifier from the per-attempt part of an Idempotency-Key. */
const KEY_SEPARATOR = '.';

/**
 * A new Idempotency-Key for one attempt of a push: the push identifier, then a random part. A
 * fresh key per attempt, because Stripe stores a 500 under a key and would replay it forever.
 */
export function idempotencyKeyFor(pushIdentifier: string): string {
  return `${pushIdentifier}${KEY_SEPARATOR}${randomBytes(6).toString('hex')}`;
}

/** The push identifiers a sample may name: the value itself, and the push identifier inside one of our keys. */
export function candidateIdentifiers(requestIdentifier: string): string[] {
  const at = requestIdentifier.lastIndexOf(KEY_SEPARATOR);
  return at > 0 ? [requestIdentifier, requestIdentifier.slice(0, at)] : [requestIdentifier];
}
