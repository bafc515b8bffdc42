/** What route handlers get and return (shared by v1.ts, v2.ts and server.ts). */
import type { FakeClock, FakeStripeState, IdentifierAttempt, MeterEventSession } from './state';

/** Settings a test may change while the fake runs. */
export interface FakeStripeSettings {
  /** Secret keys accepted on v1 and non-stream v2 calls. */
  apiKeys: Set<string>;
  /** Lifetime of a meter event session token (default 15 minutes). */
  sessionTtlMs: number;
  /**
   * Processing time of a meter event (v1 and v2 sync) while it holds its customer+meter lock:
   * what makes concurrent calls for one customer and meter collide. Default 0.
   */
  latencyMs: number;
  /**
   * How the v1 endpoint refuses a second concurrent call for one customer+meter. Stripe's docs say
   * "one concurrent call per customer per meter" and "Monitor for 429"; they do not give the body.
   * Default 429 with code `lock_timeout` and Stripe's documented object-lock message.
   */
  concurrency: { status: 429 | 409; code: string };
  /**
   * Global limit on calls per second (all endpoints), answered 429 `rate_limit`; null = none.
   * Default: Stripe's basic test-mode limit (25/s, reads included) for a test key, 1000/s live.
   */
  rateLimitPerSecond: number | null;
  /** How long an identifier stays unique, ms; null = forever. Default 24 h (Stripe: "a rolling 24 h" at least). */
  identifierRetentionMs: number | null;
  /**
   * Stripe processes meter events asynchronously: an event shows in event summaries only this
   * long after it was accepted (fake clock). Default 1 s.
   */
  summaryLagMs: number;
  /**
   * The customers that exist; null = every customer does. A meter event for any other customer is
   * accepted (200) and dropped asynchronously, reported later as `meter_event_customer_not_found`.
   */
  knownCustomers: Set<string> | null;
  webhookSecret: string;
}

export interface HandlerCtx {
  state: FakeStripeState;
  clock: FakeClock;
  settings: FakeStripeSettings;
  method: string;
  path: string;
  /** Captures of the route pattern (e.g. the meter id). */
  pathParams: string[];
  /** v1: parsed form body; v2: parsed JSON body. */
  body: Record<string, unknown>;
  /** Parsed query string (bracket notation). */
  query: Record<string, unknown>;
  requestId: string;
  idempotencyKey: string | undefined;
  /** One per meter event in the request, logged on arrival; handlers fill in the outcome. */
  attempts: IdentifierAttempt[];
  /** The stream's session, when authenticated by one. */
  session?: MeterEventSession;
  /** A sleep that close() cuts short. */
  sleep(ms: number): Promise<void>;
}

export interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export type Handler = (ctx: HandlerCtx) => HandlerResult | Promise<HandlerResult>;
