/**
 * Composite keys, defined once. Parts are joined with NUL, which no tenant, customer, meter or
 * event id may contain (validation rejects control characters), so distinct tuples never collide.
 */
const SEP = '\u0000';

/** The dedupe key (design rule 3). */
export function dedupeKey(tenant: string, id: string): string {
  return `${tenant}${SEP}${id}`;
}

/** A customer of a tenant: what a Stripe mapping is keyed by. */
export function customerKey(k: { readonly tenant: string; readonly customer: string }): string {
  return `${k.tenant}${SEP}${k.customer}`;
}

/** A stream — (tenant, customer, meter) — what the pusher plans and the push ledger is keyed by. */
export function streamKey(k: { readonly tenant: string; readonly customer: string; readonly meter: string }): string {
  return `${k.tenant}${SEP}${k.customer}${SEP}${k.meter}`;
}

/** One window of a stream (start in ms). */
export function windowKey(k: { readonly tenant: string; readonly customer: string; readonly meter: string; readonly windowStart: number }): string {
  return `${streamKey(k)}${SEP}${k.windowStart}`;
}

/** One billing period (start in ms) of a stream. */
export function periodKey(k: { readonly tenant: string; readonly customer: string; readonly meter: string }, periodStart: number | string): string {
  return `${streamKey(k)}${SEP}${periodStart}`;
}

/** An allotment: a tenant's meter, for one customer or ('' ) all of them. */
export function allotmentKey(tenant: string, meter: string, customer: string): string {
  return `${tenant}${SEP}${meter}${SEP}${customer}`;
}
