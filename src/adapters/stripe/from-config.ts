import type Stripe from 'stripe';
import type { Config } from '../../config/config';
import type { Metrics } from '../../runtime/metrics';
import { createShadowSink, type BillingSink } from './billing-sink';
import { createMeterEventStreamSink } from './meter-event-stream-sink';
import { createMeterEventsSink, createStripeClient, type PayloadKeysFor } from './meter-events-sink';

/** A Stripe client for the configured key and endpoint; null in shadow mode (no key). */
export function stripeClientFromConfig(config: Config, opts: { maxNetworkRetries?: number } = {}): Stripe | null {
  const s = config.stripe;
  if (!s.apiKey) return null;
  return createStripeClient({ apiKey: s.apiKey, host: s.host, port: s.port, protocol: s.protocol, ...opts });
}

/** No key: shadow mode. With a key: v1 meter events (or the v2 stream when STRIPE_MODE says so). */
export function createBillingSink(config: Config, metrics?: Metrics, payloadKeys?: PayloadKeysFor): BillingSink {
  const client = stripeClientFromConfig(config);
  if (!client) return createShadowSink();
  return config.stripe.mode === 'meter_event_stream' ? createMeterEventStreamSink(client, { metrics, ...(payloadKeys ? { payloadKeys } : {}) }) : createMeterEventsSink(client, metrics, payloadKeys);
}
