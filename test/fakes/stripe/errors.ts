/**
 * Stripe's error bodies, as the fake sends them.
 *
 * v1 (Stripe's `error` schema): `{error: {type, code?, message, param?}}`; stripe-node 23
 * (`Error.js` generateV1Error) picks the class from the status alone: 400/404 ->
 * StripeInvalidRequestError (StripeIdempotencyError when type is `idempotency_error`),
 * 401 -> StripeAuthenticationError, 429 (or 400 + code `rate_limit`) -> StripeRateLimitError,
 * anything else -> StripeAPIError.
 *
 * v2 (Stripe's `v2.error.*` schemas): `{error: {code, message}}`, plus `type` for the typed
 * errors such as `temporary_session_expired`. stripe-node's generateV2Error switches on `type`
 * first (temporary_session_expired -> TemporarySessionExpiredError, rate_limit ->
 * RateLimitError, idempotency_error -> StripeIdempotencyError), then on `code` ===
 * `invalid_fields` (StripeInvalidRequestError), then falls back to the v1 status mapping.
 */
export interface StripeErrorBody {
  type?: string;
  code?: string;
  message: string;
  param?: string;
  doc_url?: string;
}

/** Thrown by handlers; the server turns it into a response. Never stored for idempotent replay. */
export class FakeStripeError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
    /** Extra response headers (e.g. `stripe-should-retry`). */
    readonly headers: Record<string, string> = {},
    /** Which rule of the fake fired; sent as `x-fake-stripe-rule` (a fake-only diagnostic). */
    readonly rule?: string,
  ) {
    super(body.message);
  }
}

export function invalidRequest(message: string, extra: { param?: string; code?: string; rule?: string; headers?: Record<string, string> } = {}): FakeStripeError {
  const body: StripeErrorBody = { type: 'invalid_request_error', message };
  if (extra.code !== undefined) body.code = extra.code;
  if (extra.param !== undefined) body.param = extra.param;
  return new FakeStripeError(400, body, extra.headers, extra.rule);
}

/** A v2 error with a `code` and no `type`, as in `v2.error.duplicate_meter_event` and friends. */
export function v2Error(status: number, code: string, message: string, rule?: string, type?: string): FakeStripeError {
  const body: StripeErrorBody = { code, message };
  if (type !== undefined) body.type = type;
  return new FakeStripeError(status, body, {}, rule ?? code);
}

export function resourceMissing(what: string, id: string, param = 'id'): FakeStripeError {
  return new FakeStripeError(404, { type: 'invalid_request_error', code: 'resource_missing', param, message: `No such ${what}: '${id}'` }, {}, 'resource_missing');
}

/** Stripe's documented lock wording (docs.stripe.com/rate-limits, "Object lock timeouts"). */
export const LOCK_TIMEOUT_MESSAGE =
  'This object cannot be accessed right now because another API request or Stripe process is currently accessing it. ' +
  'If you see this error intermittently, retry the request. If you see this error frequently and are making multiple ' +
  'concurrent requests to a single object, make your requests serially or at a lower rate.';

export const RATE_LIMIT_MESSAGE = 'Request rate limit exceeded. You can learn more about rate limits here https://stripe.com/docs/rate-limits.';
