import type { BillingSink } from '../../ports/billing-sink';

export type { BillingSink, SendOutcome } from '../../ports/billing-sink';

/** No STRIPE_API_KEY: the ledger is written, nothing leaves the machine. */
export function createShadowSink(): BillingSink {
  return { shadow: true, send: async () => ({ kind: 'shadow' }), close: async () => undefined };
}
