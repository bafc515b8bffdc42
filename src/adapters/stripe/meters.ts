import type Stripe from 'stripe';
import type { StripeMeterInfo } from '../../domain/meter-config-check';
import { pacedRead, type ReadPacing } from './read-retry';

/** Every meter of the account (active and inactive), reduced to what pushing depends on. */
export async function listStripeMeters(stripe: Stripe, pacing: ReadPacing = {}): Promise<StripeMeterInfo[]> {
  const out: StripeMeterInfo[] = [];
  let startingAfter: string | undefined;
  for (;;) {
    const page = await pacedRead(() => stripe.billing.meters.list({ limit: 100, ...(startingAfter ? { starting_after: startingAfter } : {}) }), pacing);
    for (const m of page.data) {
      out.push({
        id: m.id,
        eventName: m.event_name,
        status: m.status === 'active' ? 'active' : 'inactive',
        formula: m.default_aggregation.formula,
        customerKey: m.customer_mapping.event_payload_key,
        valueKey: m.value_settings.event_payload_key,
        eventTimeWindow: m.event_time_window ?? null,
      });
    }
    if (!page.has_more || page.data.length === 0) return out;
    startingAfter = page.data[page.data.length - 1]!.id;
  }
}
