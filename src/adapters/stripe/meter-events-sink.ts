import Stripe from 'stripe';
import { idempotencyKeyFor } from '../../domain/error-report-match';
import { DEFAULT_PAYLOAD_KEYS, type PayloadKeys } from '../../domain/meter-config-check';
import type { PlannedPush } from '../../domain/push-plan';
import type { Metrics } from '../../runtime/metrics';
import type { BillingSink } from './billing-sink';
import { classifyStripeError } from './errors';

export interface StripeClientOptions {
  readonly apiKey: string;
  readonly host?: string;
  readonly port?: number;
  readonly protocol?: 'http' | 'https';
  readonly timeoutMs?: number;
  /** 0 for the pusher (it retries itself, with its ledger); reads such as reconcile let stripe-node retry. */
  readonly maxNetworkRetries?: number;
}

/**
 * The one place a Stripe client is configured. stripe-node's own retries are off: the pusher
 * retries (with backoff, the same identifier, and every attempt in the push ledger).
 */
export function createStripeClient(opts: StripeClientOptions): Stripe {
  return new Stripe(opts.apiKey, {
    maxNetworkRetries: opts.maxNetworkRetries ?? 0,
    timeout: opts.timeoutMs ?? 20_000,
    telemetry: false,
    ...(opts.host ? { host: opts.host } : {}),
    ...(opts.port ? { port: opts.port } : {}),
    ...(opts.protocol ? { protocol: opts.protocol } : {}),
  });
}

/** A meter event's payload, under the keys of its Stripe meter (customer_mapping and value_settings). */
export function meterEventPayload(push: PlannedPush, keys: PayloadKeys): Record<string, string> {
  return { [keys.customer]: push.stripeCustomerId, [keys.value]: push.value.toString() };
}

/** Per event name: the payload keys its Stripe meter expects (see stripe-meter-gate.ts). */
export type PayloadKeysFor = (eventName: string) => PayloadKeys;

/** v1 Billing Meters API: `POST /v1/billing/meter_events`, one event per call. */
export function createMeterEventsSink(stripe: Stripe, metrics?: Metrics, payloadKeys: PayloadKeysFor = () => DEFAULT_PAYLOAD_KEYS): BillingSink {
  return {
    shadow: false,
    async send(push: PlannedPush) {
      try {
        // No Idempotency-Key is re-used: Stripe stores a 500 under a key, so re-using one after a
        // 500-after-accept would get that 500 forever. The meter event identifier is the dedupe
        // key: a resend of an accepted event answers "already exists", which counts as delivered.
        await stripe.billing.meterEvents.create(
          { event_name: push.eventName, identifier: push.identifier, timestamp: push.timestamp, payload: meterEventPayload(push, payloadKeys(push.eventName)) },
          // A fresh key per attempt that starts with the push identifier: an error report that
          // samples the request by its idempotency key still names the push.
          { idempotencyKey: idempotencyKeyFor(push.identifier) },
        );
        metrics?.stripeCalls.inc({ status: '2xx' });
        return { kind: 'reported' };
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        metrics?.stripeCalls.inc({ status: status ? `${Math.floor(status / 100)}xx` : 'network' });
        return classifyStripeError(err);
      }
    },
    close: async () => undefined,
  };
}
