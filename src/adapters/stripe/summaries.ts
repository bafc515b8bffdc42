import type Stripe from 'stripe';
import { pacedRead, type ReadPacing } from './read-retry';

/** Stripe wants summary bounds on minutes: the range widened to whole minutes (ms). */
export function minuteAligned(from: number, to: number): { from: number; to: number } {
  return { from: Math.floor(from / 60_000) * 60_000, to: Math.ceil(to / 60_000) * 60_000 };
}

/** Sum of a customer's aggregated values over [from, to) (minute-aligned ms), from Stripe's meter event summaries. */
export async function summarisedTotal(stripe: Stripe, meterId: string, customer: string, from: number, to: number, pacing: ReadPacing = {}): Promise<bigint> {
  let total = 0n;
  let startingAfter: string | undefined;
  for (;;) {
    const page = await pacedRead(
      () => stripe.billing.meters.listEventSummaries(meterId, { customer, start_time: from / 1000, end_time: to / 1000, limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) }),
      pacing,
    );
    for (const s of page.data) total += BigInt(Math.round(s.aggregated_value));
    if (!page.has_more || page.data.length === 0) return total;
    startingAfter = page.data[page.data.length - 1]!.id;
  }
}
