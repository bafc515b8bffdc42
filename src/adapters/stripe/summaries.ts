import type Stripe from 'stripe';

/** Stripe meter ids by event name (active meters). */
export async function meterIdsByEventName(stripe: Stripe): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for await (const m of stripe.billing.meters.list({ limit: 100 })) {
    if (m.status === 'active') ids.set(m.event_name, m.id);
  }
  return ids;
}

/**
 * Sum of a customer's aggregated values over [from, to), from Stripe's meter event summaries.
 * Stripe wants minute-aligned bounds: `from` is floored and `to` ceiled to the minute.
 */
export async function summarisedTotal(stripe: Stripe, meterId: string, customer: string, from: number, to: number): Promise<bigint> {
  const start = Math.floor(from / 60_000) * 60;
  const end = Math.ceil(to / 60_000) * 60;
  let total = 0n;
  for await (const s of stripe.billing.meters.listEventSummaries(meterId, { customer, start_time: start, end_time: end, limit: 100 })) {
    total += BigInt(Math.round(s.aggregated_value));
  }
  return total;
}
