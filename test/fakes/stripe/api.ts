/** The public face of the fake: options, the client factory, inspection, faults, webhooks. */
import type Stripe from 'stripe';
import type { FakeStripeSettings } from './context';
import type { FaultHandle, FaultSpec } from './faults';
import type { Variant } from './inspect';
import type { AcceptedEvent, AsyncError, CallRecord, FakeClock, FakeStripeState, IdentifierAttempt, Meter } from './state';
import type { MeterErrorReportInput, WebhookDelivery } from './webhooks';

export interface FakeStripeOptions {
  /** The secret key the fake accepts (default `sk_test_fake_meterline`). */
  apiKey?: string;
  /** Stripe's clock, ms since the epoch (default Date.now); `fake.clock` can also move it. */
  now?: () => number;
  sessionTtlMs?: number;
  latencyMs?: number;
  concurrency?: { status: 429 | 409; code?: string };
  /** Default: 25/s for a test key (Stripe's basic test-mode limit), 1000/s for a live key. */
  rateLimitPerSecond?: number | null;
  /** Default 24 h. */
  identifierRetentionMs?: number | null;
  /** Default 1 s (see FakeStripeSettings.summaryLagMs). */
  summaryLagMs?: number;
  /** Default null: every customer exists. */
  knownCustomers?: string[] | null;
  webhookSecret?: string;
}

export interface ClientOptions {
  /** Default: the fake's secret key. Pass a session token for the v2 stream. */
  apiKey?: string;
  /** stripe-node's default is 2. */
  maxNetworkRetries?: number;
  /** ms; stripe-node's default is 80000. */
  timeout?: number;
}

export interface FakeStripe {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly url: string;
  readonly apiKey: string;
  readonly webhookSecret: string;
  readonly clock: FakeClock;
  /** Mutable at run time (latency, rate limit, session TTL, concurrency answer, ...). */
  readonly settings: FakeStripeSettings;
  /** Raw state, for assertions the helpers below do not cover. */
  readonly state: FakeStripeState;
  /** A stripe-node client pointed at the fake (v1, v2 and the meter-events host). */
  client(opts?: ClientOptions): Stripe;
  /** Customers that exist from now on (turns on knownCustomers). */
  addCustomers(...ids: string[]): void;
  /** Seeds a meter without an HTTP call. */
  addMeter(p: { event_name: string; formula?: 'sum' | 'count' | 'last'; display_name?: string; customerKey?: string; valueKey?: string; event_time_window?: 'hour' | 'day' }): Meter;
  acceptedEvents(filter?: { customer?: string; eventName?: string; includeCancelled?: boolean }): AcceptedEvent[];
  /** Raw sums of accepted, non-cancelled values per (customer, event_name); summaries apply formulas. */
  totals(): Array<{ customer: string; eventName: string; total: bigint; count: number }>;
  totalFor(customer: string, eventName: string): bigint;
  /** Every meter event ever sent (all attempts, in arrival order), with its outcome. */
  identifierLog(): IdentifierAttempt[];
  /** Identifiers that were sent with more than one (event_name, customer, value, timestamp): should be empty. */
  identifierConflicts(): Array<{ identifier: string; variants: Variant[] }>;
  /** Failures Stripe would report asynchronously (stream events). */
  asyncErrors(): AsyncError[];
  calls(): CallRecord[];
  callsByEndpoint(): Record<string, number>;
  /** Keyed by status code, or 'none' when no response was sent. */
  callsByStatus(): Record<string, number>;
  inject(fault: FaultSpec): FaultHandle;
  clearFaults(): void;
  /**
   * Forgets the calls counted toward the rate limit: the next call starts a fresh second. For a
   * test that starts right after another, whose calls would otherwise spend its budget.
   */
  resetRateWindow(): void;
  webhooks: {
    errorReportTriggered(input: MeterErrorReportInput & { meterId: string }): WebhookDelivery;
    noMeterFound(input: Omit<MeterErrorReportInput, 'meterId'>): WebhookDelivery;
    /**
     * One delivery per meter (and one no_meter_found) from the fake's asynchronous errors, as Stripe
     * reports them: `error_count` counts every failure, `sample_errors` lists at most `maxSamples`
     * per error type (default 3). `sampleRequest` picks what a sample's `request.identifier` holds:
     * the meter event identifier (default) or the request's Idempotency-Key (stripe-node documents
     * the field as "the request idempotency key").
     */
    fromAsyncErrors(opts?: { maxSamples?: number; sampleRequest?: 'event_identifier' | 'idempotency_key'; since?: number }): WebhookDelivery[];
    sign(payload: string, opts?: { timestamp?: number; secret?: string }): string;
    /** POSTs a delivery to a receiver, as Stripe would. */
    deliver(url: string, d: WebhookDelivery): Promise<{ status: number; body: string }>;
  };
  close(): Promise<void>;
}

