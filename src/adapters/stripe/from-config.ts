import type { Config } from '../../config/config';
import type { Metrics } from '../../runtime/metrics';
import { createShadowSink, type BillingSink } from './billing-sink';
import { createMeterEventStreamSink } from './meter-event-stream-sink';
import { createMeterEventsSink, createStripeClient } from './meter-events-sink';

/** No key: shadow mode. With a key: v1 meter events (or the v2 stream when STRIPE_MODE says so). */
export function createBillingSink(config: Config, metrics?: Metrics): BillingSink {
  const s = config.stripe;
  if (!s.apiKey) return createShadowSink();
  const client = createStripeClient({ apiKey: s.apiKey, host: s.host, port: s.port, protocol: s.protocol });
  return s.mode === 'meter_event_stream' ? createMeterEventStreamSink(client, { metrics }) : createMeterEventsSink(client, metrics);
}
