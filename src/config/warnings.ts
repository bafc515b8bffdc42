import type { Config } from './config';
import { TEST_MODE_BASIC_LIMIT } from './stripe-rate-limits';

/**
 * Settings that are valid but put billing at risk. Logged at start-up by `run` and printed by
 * `meterline config`; never fatal. Pure.
 */
export function configWarnings(config: Config): string[] {
  const s = config.stripe;
  const warnings: string[] = [];
  if (s.apiKey && s.mode === 'meter_event_stream' && !s.webhookSecret) {
    warnings.push(
      'STRIPE_MODE=meter_event_stream without STRIPE_WEBHOOK_SECRET: Stripe validates stream events asynchronously and reports ' +
        'the invalid ones only through meter error-report webhooks, so without them an event Stripe drops still counts as reported. ' +
        'Set STRIPE_WEBHOOK_SECRET and send v1.billing.meter.error_report_triggered and v1.billing.meter.no_meter_found to /webhooks/stripe.',
    );
  }
  if (s.apiKey && s.rateLimits.keyMode === 'test' && s.rateLimits.pushPerSecond + s.rateLimits.reconcilePerSecond > TEST_MODE_BASIC_LIMIT) {
    warnings.push(
      `STRIPE_RATE_LIMIT=${s.rateLimits.pushPerSecond} with a test-mode key: test mode allows ${TEST_MODE_BASIC_LIMIT} operations/s in all ` +
        `(meter events and reconcile's ${s.rateLimits.reconcilePerSecond} reads/s included); expect 429s. Unset it to use the test-mode default.`,
    );
  }
  return warnings;
}

/** One line for the start-up log: which rate limit applies and why. */
export function describeStripeRateLimit(config: Config): string {
  const l = config.stripe.rateLimits;
  return `Stripe rate limit: ${l.pushPerSecond} pushes/s (${l.source}${l.source === 'STRIPE_RATE_LIMIT' ? '' : `; STRIPE_RATE_LIMIT overrides it`}), reconcile reads ${l.reconcilePerSecond}/s, ${l.keyMode}-mode key`;
}
