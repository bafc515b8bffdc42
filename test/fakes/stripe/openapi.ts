/**
 * Request schemas of the billing endpoints, transcribed from the request side of
 * /work/shared/stripe/billing-openapi-subset.json (Stripe OpenAPI, API 2026-09-30.endive), and
 * a validator that rejects what Stripe's request validation rejects: unknown parameters
 * (`additionalProperties: false`), missing required ones, wrong types, `maxLength`, `enum`.
 * Stripe reports one violation per request; so does this.
 */
import { FakeStripeError, invalidRequest, v2Error } from './errors';

export type Schema =
  | { type: 'object'; properties?: Record<string, Schema>; required?: readonly string[]; additionalProperties?: boolean | Schema }
  | { type: 'string'; maxLength?: number; enum?: readonly string[]; format?: 'date-time' }
  | { type: 'integer'; format?: 'unix-time' }
  | { type: 'array'; items: Schema };

const expand: Schema = { type: 'array', items: { type: 'string', maxLength: 5000 } };
const str = (maxLength?: number): Schema => (maxLength === undefined ? { type: 'string' } : { type: 'string', maxLength });
const stringMap: Schema = { type: 'object', additionalProperties: { type: 'string' } };

export const SCHEMAS = {
  /** POST /v1/billing/meters (PostBillingMeters) */
  meterCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['default_aggregation', 'display_name', 'event_name'],
    properties: {
      customer_mapping: {
        type: 'object',
        required: ['event_payload_key', 'type'],
        properties: { event_payload_key: str(100), type: { type: 'string', enum: ['by_id'] } },
      },
      default_aggregation: { type: 'object', required: ['formula'], properties: { formula: { type: 'string', enum: ['count', 'last', 'sum'] } } },
      display_name: str(250),
      event_name: str(100),
      event_time_window: { type: 'string', enum: ['day', 'hour'] },
      expand,
      value_settings: { type: 'object', required: ['event_payload_key'], properties: { event_payload_key: str(100) } },
    },
  },
  /** POST /v1/billing/meters/{id} (PostBillingMetersId) */
  meterUpdate: { type: 'object', additionalProperties: false, properties: { display_name: str(250), expand } },
  /** POST /v1/billing/meters/{id}/deactivate|reactivate */
  meterStatus: { type: 'object', additionalProperties: false, properties: { expand } },
  /** GET /v1/billing/meters (GetBillingMeters) query */
  meterList: {
    type: 'object',
    additionalProperties: false,
    properties: { ending_before: str(5000), limit: { type: 'integer' }, starting_after: str(5000), expand, status: { type: 'string', enum: ['active', 'inactive'] } },
  },
  /** GET /v1/billing/meters/{id} query */
  meterRetrieve: { type: 'object', additionalProperties: false, properties: { expand } },
  /** GET /v1/billing/meters/{id}/event_summaries (GetBillingMetersIdEventSummaries) query */
  eventSummaries: {
    type: 'object',
    additionalProperties: false,
    required: ['customer', 'end_time', 'start_time'],
    properties: {
      customer: str(5000),
      end_time: { type: 'integer', format: 'unix-time' },
      start_time: { type: 'integer', format: 'unix-time' },
      value_grouping_window: { type: 'string', enum: ['day', 'hour'] },
      ending_before: str(5000),
      limit: { type: 'integer' },
      starting_after: str(5000),
      expand,
    },
  },
  /** POST /v1/billing/meter_events (PostBillingMeterEvents) */
  meterEventCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['event_name', 'payload'],
    properties: { event_name: str(100), expand, identifier: str(100), payload: stringMap, timestamp: { type: 'integer', format: 'unix-time' } },
  },
  /** POST /v1/billing/meter_event_adjustments (PostBillingMeterEventAdjustments) */
  meterEventAdjustmentCreate: {
    type: 'object',
    additionalProperties: false,
    required: ['event_name', 'type'],
    properties: { cancel: { type: 'object', properties: { identifier: str(100) } }, event_name: str(100), expand, type: { type: 'string', enum: ['cancel'] } },
  },
  /** POST /v2/billing/meter_event_stream (PostV2BillingMeterEventStream), JSON */
  meterEventStream: {
    type: 'object',
    required: ['events'],
    properties: {
      events: {
        type: 'array',
        items: {
          type: 'object',
          required: ['event_name', 'payload'],
          properties: { event_name: str(), identifier: str(), payload: stringMap, timestamp: { type: 'string', format: 'date-time' } },
        },
      },
    },
  },
  /** POST /v2/billing/meter_events (PostV2BillingMeterEvents), JSON */
  v2MeterEventCreate: {
    type: 'object',
    required: ['event_name', 'payload'],
    properties: { event_name: str(), identifier: str(), payload: stringMap, timestamp: { type: 'string', format: 'date-time' } },
  },
} as const satisfies Record<string, Schema>;

/** RFC 3339 date-time (what `format: date-time` means in Stripe's spec). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

interface Violation {
  kind: 'unknown' | 'missing' | 'type' | 'length' | 'enum';
  param: string;
  message: string;
  code?: string;
}

/**
 * `form`: values arrive as strings from x-www-form-urlencoded bodies / query strings, and
 * integers are coerced. `json`: v2 bodies, types must match exactly.
 * Returns the (coerced) value, or the first violation.
 */
function check(value: unknown, schema: Schema, param: string, mode: 'form' | 'json'): { value: unknown } | Violation {
  switch (schema.type) {
    case 'object': {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        return { kind: 'type', param, message: `Invalid object${param ? ` for ${param}` : ''}` };
      }
      const obj = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      const props = schema.properties ?? {};
      for (const key of Object.keys(obj)) {
        const sub = param ? `${param}[${key}]` : key;
        const propSchema = props[key] ?? (typeof schema.additionalProperties === 'object' ? schema.additionalProperties : undefined);
        if (!propSchema) {
          // `additionalProperties: false` in the spec; objects without the flag (the nested ones)
          // are closed too in Stripe's validation.
          if (schema.additionalProperties === true) {
            out[key] = obj[key];
            continue;
          }
          return { kind: 'unknown', param: sub, code: 'parameter_unknown', message: `Received unknown parameter: ${sub}` };
        }
        const r = check(obj[key], propSchema, sub, mode);
        if (!('value' in r)) return r;
        out[key] = r.value;
      }
      for (const key of schema.required ?? []) {
        if (obj[key] === undefined || (mode === 'form' && obj[key] === '')) {
          const sub = param ? `${param}[${key}]` : key;
          return { kind: 'missing', param: sub, code: 'parameter_missing', message: `Missing required param: ${sub}.` };
        }
      }
      return { value: out };
    }
    case 'array': {
      if (!Array.isArray(value)) return { kind: 'type', param, message: `Invalid array for ${param}` };
      const out: unknown[] = [];
      for (let i = 0; i < value.length; i++) {
        const r = check(value[i], schema.items, `${param}[${i}]`, mode);
        if (!('value' in r)) return r;
        out.push(r.value);
      }
      return { value: out };
    }
    case 'string': {
      if (typeof value !== 'string') return { kind: 'type', param, message: `Invalid string for ${param}: expected a string` };
      if (schema.maxLength !== undefined && value.length > schema.maxLength) {
        return { kind: 'length', param, message: `Invalid string: ${value.slice(0, 20)}...; must be at most ${schema.maxLength} characters` };
      }
      if (schema.enum && !schema.enum.includes(value)) {
        const opts = [...schema.enum];
        const list = opts.length > 1 ? `${opts.slice(0, -1).join(', ')}, or ${opts[opts.length - 1]}` : opts[0];
        return { kind: 'enum', param, message: `Invalid ${param}: must be one of ${list}` };
      }
      if (schema.format === 'date-time' && !(RFC3339.test(value) && Number.isFinite(Date.parse(value)))) {
        return { kind: 'type', param, message: `Invalid ${param}: must be an RFC 3339 date-time` };
      }
      return { value };
    }
    case 'integer': {
      if (mode === 'form') {
        if (typeof value !== 'string' || !/^-?\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
          return { kind: 'type', param, code: 'parameter_invalid_integer', message: `Invalid integer: ${String(value)}` };
        }
        return { value: Number(value) };
      }
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        return { kind: 'type', param, message: `Invalid integer for ${param}` };
      }
      return { value };
    }
  }
}

/** v1 (form-encoded body or query): a violation is a 400 `invalid_request_error` with `param`. */
export function validateV1<T>(params: unknown, schema: Schema): T {
  const r = check(params, schema, '', 'form');
  if ('value' in r) return r.value as T;
  throw invalidRequest(r.message, { param: r.param, ...(r.code ? { code: r.code } : {}), rule: `schema_${r.kind}` });
}

/**
 * v2 (JSON): a violation is a 400 with code `invalid_fields` and no `type`, the shape stripe-node's
 * generateV2Error special-cases ("invalid_field response in V2 APIs returns the field 'code'
 * instead of 'type'") into a StripeInvalidRequestError.
 */
export function validateV2<T>(body: unknown, schema: Schema): T {
  const r = check(body, schema, '', 'json');
  if ('value' in r) return r.value as T;
  throw v2Error(400, 'invalid_fields', r.message, `schema_${r.kind}`);
}

export function isFakeStripeError(e: unknown): e is FakeStripeError {
  return e instanceof FakeStripeError;
}
