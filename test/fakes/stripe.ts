/**
 * A fake Stripe (billing meters, meter events, adjustments, summaries, v2 meter event
 * session/stream/events, thin-event webhooks) for tests, reached by the real stripe-node client.
 * See test/fakes/stripe/server.ts for the pipeline and the fault-injection API, rules.ts for the
 * Stripe rules enforced, and test/integration/fake-stripe.spec.ts for what is proven.
 */
export { startFakeStripe } from './stripe/server';
export type { ClientOptions, FakeStripe, FakeStripeOptions } from './stripe/api';
export type { FaultAction, FaultHandle, FaultMatch, FaultSpec } from './stripe/faults';
export type { FakeStripeSettings } from './stripe/context';
export { LOCK_TIMEOUT_MESSAGE, RATE_LIMIT_MESSAGE } from './stripe/errors';
export { RULES } from './stripe/rules';
export { FakeClock } from './stripe/state';
export type { AcceptedEvent, AsyncError, AttemptOutcome, CallRecord, ErrorReportCode, IdentifierAttempt, Meter } from './stripe/state';
export { signPayload } from './stripe/webhooks';
export type { ErrorTypeInput, MeterErrorReportInput, WebhookDelivery } from './stripe/webhooks';
