import type { MeterCatalog, MeterDefinition } from './meters';

/** What Stripe says about one of its meters (a `billing.meter`, reduced to what pushing depends on). */
export interface StripeMeterInfo {
  readonly id: string;
  readonly eventName: string;
  readonly status: 'active' | 'inactive';
  readonly formula: string;
  readonly customerKey: string;
  readonly valueKey: string;
  /** hour | day: Stripe keeps only the newest event per window (pre-aggregated meters). */
  readonly eventTimeWindow: string | null;
}

/** The payload keys a meter event must carry: the Stripe meter's customer_mapping and value_settings keys. */
export interface PayloadKeys {
  readonly customer: string;
  readonly value: string;
}

/** Stripe's defaults, used until a check has read the meters (and in shadow mode). */
export const DEFAULT_PAYLOAD_KEYS: PayloadKeys = { customer: 'stripe_customer_id', value: 'value' };

export interface MeterConfigProblem {
  readonly meter: string;
  readonly eventName: string;
  /** What is wrong and what to change. */
  readonly problem: string;
}

export interface MeterConfigCheck {
  /** By event name, for every meter that matches its Stripe meter. */
  readonly keys: ReadonlyMap<string, PayloadKeys>;
  readonly problems: readonly MeterConfigProblem[];
}

const FORMULA = { delta: 'sum', absolute: 'last' } as const;

/**
 * Checks every meter of meters.yaml that bills to Stripe against the account's meters. Pure.
 *  - an active Stripe meter with its event_name must exist;
 *  - its formula must fit how meterline pushes: `sum` for delta meters (sum, count), `last` for
 *    absolute ones (max, last, unique_count);
 *  - a delta meter's Stripe meter must not be pre-aggregated (event_time_window): Stripe would
 *    keep one delta per window and drop the rest;
 *  - the payload keys to send are the Stripe meter's, whatever they are called.
 */
export function checkStripeMeters(catalog: MeterCatalog, stripeMeters: readonly StripeMeterInfo[]): MeterConfigCheck {
  const keys = new Map<string, PayloadKeys>();
  const problems: MeterConfigProblem[] = [];
  for (const m of catalog.values()) {
    if (!m.stripe) continue;
    const problem = problemOf(m, stripeMeters);
    if (problem) problems.push({ meter: m.name, eventName: m.stripe.eventName, problem });
    else {
      const s = stripeMeters.find((x) => x.status === 'active' && x.eventName === m.stripe!.eventName)!;
      keys.set(m.stripe.eventName, { customer: s.customerKey, value: s.valueKey });
    }
  }
  return { keys, problems };
}

function problemOf(m: MeterDefinition, stripeMeters: readonly StripeMeterInfo[]): string | null {
  const { eventName, mode } = m.stripe!;
  const want = FORMULA[mode];
  const active = stripeMeters.find((x) => x.status === 'active' && x.eventName === eventName);
  if (!active) {
    const inactive = stripeMeters.find((x) => x.eventName === eventName);
    if (inactive) return `Stripe meter ${inactive.id} (event_name '${eventName}') is inactive: reactivate it, or point stripe.event_name at an active meter`;
    return `no Stripe meter has event_name '${eventName}': create one with default_aggregation.formula '${want}', or fix stripe.event_name in meters.yaml`;
  }
  if (active.formula !== want) {
    return (
      `Stripe meter ${active.id} (event_name '${eventName}') has formula '${active.formula}', but meterline pushes ${mode === 'delta' ? 'deltas' : 'absolute values'} ` +
      `for aggregation '${m.aggregation}', which need formula '${want}': create a meter with formula '${want}' (Stripe meters cannot change their formula) and point stripe.event_name at it`
    );
  }
  if (mode === 'delta' && active.eventTimeWindow) {
    return `Stripe meter ${active.id} (event_name '${eventName}') is pre-aggregated (event_time_window '${active.eventTimeWindow}'): Stripe keeps one event per window and would drop deltas; use a meter without event_time_window`;
  }
  return null;
}
