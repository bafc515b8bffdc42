/** The fake's memory: meters, accepted events, every identifier attempt, sessions, calls. */
import { randomBytes } from 'node:crypto';

/** Stripe's view of time. Tests move it; nothing in the fake reads Date.now directly. */
export class FakeClock {
  private offset = 0;
  private fixed: number | null = null;
  constructor(private readonly base: () => number = Date.now) {}
  /** Milliseconds since the epoch. */
  now(): number {
    return (this.fixed ?? this.base()) + this.offset;
  }
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }
  advance(ms: number): void {
    this.offset += ms;
  }
  /** Freeze the clock at `ms` (advance() still moves it). */
  set(ms: number): void {
    this.fixed = ms;
    this.offset = 0;
  }
}

export const rid = (prefix: string, bytes = 12): string => `${prefix}${randomBytes(bytes).toString('base64url')}`;
export const rfc3339 = (ms: number): string => new Date(ms).toISOString();

export type Formula = 'sum' | 'count' | 'last';

/** Stripe's `billing.meter` object. */
export interface Meter {
  id: string;
  object: 'billing.meter';
  created: number;
  customer_mapping: { type: 'by_id'; event_payload_key: string };
  default_aggregation: { formula: Formula };
  display_name: string;
  event_name: string;
  event_time_window: 'hour' | 'day' | null;
  livemode: false;
  status: 'active' | 'inactive';
  status_transitions: { deactivated_at: number | null };
  updated: number;
  value_settings: { event_payload_key: string };
}

export type Via = 'v1' | 'v2' | 'stream';

export interface AcceptedEvent {
  identifier: string;
  eventName: string;
  meterId: string;
  customer: string;
  value: bigint;
  /** The value string as sent. */
  rawValue: string;
  /** Event time, Unix seconds. */
  timestamp: number;
  /** When the fake accepted it (fake clock, ms): the 24 h cancel window counts from here. */
  receivedAt: number;
  /** Acceptance order, for `last` and pre-aggregated windows. */
  seq: number;
  via: Via;
  payload: Record<string, string>;
  cancelledAt: number | null;
}

export type AttemptOutcome =
  | 'pending'
  | 'accepted'
  | 'duplicate'
  | 'rejected'
  | 'conflict'
  | 'rate_limited'
  | 'fault'
  | 'idempotent_replay'
  | 'idempotency_error'
  | 'unauthenticated'
  | 'dropped_async'
  | 'connection_dropped';

/** One identifier (or identifier-less event) as it arrived, whatever became of it. */
export interface IdentifierAttempt {
  /** As sent; for identifier-less events, the one the fake generated (then `generated`). */
  identifier: string | null;
  generated: boolean;
  eventName: string | undefined;
  customer: string | undefined;
  value: string | undefined;
  /** As sent: Unix seconds (v1) or RFC 3339 (v2); undefined when omitted. */
  timestamp: number | string | undefined;
  via: Via;
  requestId: string;
  idempotencyKey: string | undefined;
  at: number;
  outcome: AttemptOutcome;
  /** The rule that rejected it, if any. */
  rule?: string;
}

/** Errors Stripe reports asynchronously (error-report webhooks), e.g. for stream events. */
export type ErrorReportCode =
  | 'archived_meter'
  | 'meter_event_customer_not_found'
  | 'meter_event_dimension_count_too_high'
  | 'meter_event_invalid_value'
  | 'meter_event_no_customer_defined'
  | 'meter_event_value_too_many_digits'
  | 'missing_dimension_payload_keys'
  | 'no_meter'
  | 'timestamp_in_future'
  | 'timestamp_too_far_in_past';

export interface AsyncError {
  code: ErrorReportCode;
  message: string;
  identifier: string;
  eventName: string;
  meterId: string | null;
  at: number;
  /** The Idempotency-Key of the request that carried the event. */
  idempotencyKey?: string;
}

export interface MeterEventSession {
  id: string;
  token: string;
  createdAt: number;
  expiresAt: number;
}

export interface CallRecord {
  seq: number;
  at: number;
  method: string;
  path: string;
  /** `METHOD /route/pattern`, e.g. `POST /v1/billing/meter_events`. */
  endpoint: string;
  /** null when no response was sent (connection destroyed or left hanging). */
  status: number | null;
  outcome: 'answered' | 'reset' | 'hang' | 'truncate';
  requestId: string;
  idempotencyKey: string | undefined;
  replayed: boolean;
  fault?: string;
  rule?: string;
}

export interface StoredResponse {
  fingerprint: string;
  status: number;
  body: string;
  headers: Record<string, string>;
  requestId: string;
}

export class FakeStripeState {
  readonly meters = new Map<string, Meter>();
  readonly events: AcceptedEvent[] = [];
  /** identifier -> accepted event (uniqueness: kept forever unless retention is set). */
  readonly byIdentifier = new Map<string, AcceptedEvent>();
  /** identifier -> when it was received, for events accepted and then dropped asynchronously (the identifier is used). */
  readonly droppedIdentifiers = new Map<string, number>();
  /** identifiers claimed by requests still in flight. */
  readonly reserved = new Set<string>();
  readonly attempts: IdentifierAttempt[] = [];
  readonly asyncErrors: AsyncError[] = [];
  readonly sessions = new Map<string, MeterEventSession>();
  readonly calls: CallRecord[] = [];
  readonly idempotency = new Map<string, StoredResponse | { inFlight: true; fingerprint: string }>();
  /** `customer\u0000event_name` of meter-event requests in flight (one concurrent call per customer per meter). */
  readonly locks = new Set<string>();
  /** Full v2 events served by GET /v2/core/events/:id. */
  readonly coreEvents = new Map<string, Record<string, unknown>>();
  private seq = 0;

  nextSeq(): number {
    return ++this.seq;
  }

  /** Event names are unique across meters ("You can only use an event name with a single meter"). */
  meterFor(eventName: string): Meter | undefined {
    for (const m of this.meters.values()) if (m.event_name === eventName) return m;
    return undefined;
  }

  /**
   * Identifier uniqueness: Stripe enforces it "within a rolling 24 hour period" at least; the
   * fake keeps identifiers forever unless a retention is set. Identifiers claimed by requests
   * still in flight count as taken.
   */
  identifierTaken(identifier: string, nowMs: number, retentionMs: number | null): boolean {
    if (this.reserved.has(identifier)) return true;
    const receivedAt = this.byIdentifier.get(identifier)?.receivedAt ?? this.droppedIdentifiers.get(identifier);
    return receivedAt !== undefined && (retentionMs === null || nowMs - receivedAt < retentionMs);
  }

  /** An accepted event that fails Stripe's asynchronous validation: reported later, never counted. */
  dropAsync(e: AsyncError): void {
    this.asyncErrors.push(e);
    this.droppedIdentifiers.set(e.identifier, e.at);
  }

  recordEvent(e: Omit<AcceptedEvent, 'seq' | 'cancelledAt'>): AcceptedEvent {
    const ev: AcceptedEvent = { ...e, seq: this.nextSeq(), cancelledAt: null };
    this.events.push(ev);
    this.byIdentifier.set(ev.identifier, ev);
    return ev;
  }
}
