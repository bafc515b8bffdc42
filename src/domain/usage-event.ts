import { SCALE, formatDecimal, parseDecimal } from './decimal';

/**
 * A usage event as the rest of the system sees it, whatever encoding it arrived in.
 * `value` is canonical decimal text (see decimal.ts); `timestamp` is event time in ms (UTC).
 */
export interface UsageEvent {
  readonly id: string;
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  readonly value: string;
  readonly timestamp: number;
  readonly properties: Readonly<Record<string, string>>;
  /** Schema v2: the producing service, for tracing. null when absent (v1 data). */
  readonly source: string | null;
}

export const LIMITS = {
  idMaxLength: 128,
  nameMaxLength: 128,
  meterNamePattern: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/,
  maxProperties: 64,
  propertyKeyMaxLength: 128,
  propertyValueMaxLength: 1024,
  /** Event times before this are treated as a producer bug (unit mix-up, zero default). */
  earliestTimestampMs: Date.UTC(2000, 0, 1),
  /**
   * Integer digits one event's value may have. Totals are Decimal(38, 9) sums, and ClickHouse's
   * sum() wraps silently past about 1.7e29: two events of 29 digits summed to a negative total.
   * 20 digits leave room for over a billion maximal events in one total (Stripe takes 15 per event).
   */
  valueMaxIntegerDigits: 20,
} as const;

const MAX_VALUE_UNITS = 10n ** BigInt(LIMITS.valueMaxIntegerDigits + SCALE) - 1n;

export interface ValidationOptions {
  /** Current time in ms: passed in, never read from a clock here. */
  readonly now: number;
  /** How far ahead of `now` an event time may be (clock skew). */
  readonly maxFutureSkewMs: number;
}

export type Validated = { ok: true; event: UsageEvent } | { ok: false; reason: string };

/** The fields of the latest Avro schema (a unit test keeps the two in step). */
export const EVENT_FIELDS: readonly string[] = ['id', 'tenant', 'customer', 'meter', 'value', 'timestamp', 'properties', 'source'];
const KNOWN_FIELDS = new Set(EVENT_FIELDS);
// C0 and C1 control characters (tab, newline, NUL …) are never part of an identifier.
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Validates an event-shaped record (from NDJSON or from a decoded Avro record) and returns
 * the canonical event, or the first reason it is unacceptable. Pure: time comes from `opts`.
 * `value` may be a decimal string, a number, or a bigint-free lossless number text.
 */
export function validateEvent(raw: unknown, opts: ValidationOptions): Validated {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return fail('event is not an object');
  const rec = raw as Record<string, unknown>;
  for (const key of Object.keys(rec)) {
    if (!KNOWN_FIELDS.has(key)) return fail(`unknown field ${JSON.stringify(key.slice(0, 64))}`);
  }
  const id = identifier(rec.id, 'id', LIMITS.idMaxLength);
  if (typeof id !== 'string') return id;
  const tenant = identifier(rec.tenant, 'tenant', LIMITS.nameMaxLength);
  if (typeof tenant !== 'string') return tenant;
  const customer = identifier(rec.customer, 'customer', LIMITS.nameMaxLength);
  if (typeof customer !== 'string') return customer;
  if (typeof rec.meter !== 'string' || rec.meter.length === 0) return fail('missing meter');
  if (!LIMITS.meterNamePattern.test(rec.meter)) {
    return fail('meter name must be 1-100 characters of letters, digits, "_", ".", ":" or "-"');
  }
  const meter = rec.meter;

  const value = canonicalValue(rec.value);
  if (typeof value !== 'string') return value;

  const timestamp = parseTimestamp(rec.timestamp);
  if (typeof timestamp !== 'number') return timestamp;
  if (timestamp < LIMITS.earliestTimestampMs) return fail(`timestamp ${describeTime(timestamp)} is before 2000-01-01`);
  if (timestamp > opts.now + opts.maxFutureSkewMs) {
    return fail(`timestamp ${describeTime(timestamp)} is too far in the future`);
  }

  const props = parseProperties(rec.properties);
  if (!props.ok) return props;
  const properties = props.value;

  let source: string | null = null;
  if (rec.source !== undefined && rec.source !== null) {
    if (typeof rec.source !== 'string' || rec.source.length > LIMITS.nameMaxLength || CONTROL_CHARS.test(rec.source)) {
      return fail('source must be a string of at most 128 printable characters');
    }
    source = rec.source;
  }

  return {
    ok: true,
    event: { id, tenant, customer, meter, value, timestamp, properties, source },
  };
}

/**
 * Text that is already a valid value in canonical form — what the Avro decoder writes: no sign,
 * no leading or trailing zeros, at most 20 integer and 9 fractional digits. It is its own
 * canonical text (formatDecimal(parseDecimal(text)) === text), so it is taken as it is.
 */
const CANONICAL_VALUE = new RegExp(`^(?:0|[1-9]\\d{0,${LIMITS.valueMaxIntegerDigits - 1}})(?:\\.\\d{0,${SCALE - 1}}[1-9])?$`);

/** A usage value → its canonical decimal text, or the reason it is unacceptable. */
function canonicalValue(v: unknown): string | { ok: false; reason: string } {
  if (v === undefined || v === null) return fail('missing value');
  if (typeof v === 'string' && CANONICAL_VALUE.test(v)) return v;
  if (typeof v !== 'string' && typeof v !== 'number') return fail('value must be a decimal string or number');
  const value = parseDecimal(v);
  if (!value.ok) return fail(value.reason);
  // Usage is a quantity: a negative value would silently lower a bill (no correction flow exists).
  if (value.units < 0n) return fail('value is negative: usage values must be zero or more');
  if (value.units > MAX_VALUE_UNITS) return fail(`value exceeds ${LIMITS.valueMaxIntegerDigits} integer digits`);
  return formatDecimal(value.units);
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}

function identifier(v: unknown, field: string, max: number): string | { ok: false; reason: string } {
  if (v === undefined || v === null || v === '') return fail(`missing ${field}`);
  if (typeof v !== 'string') return fail(`${field} must be a string`);
  if (v.length > max) return fail(`${field} is longer than ${max} characters`);
  if (CONTROL_CHARS.test(v)) return fail(`${field} contains control characters`);
  if (v.trim() !== v) return fail(`${field} has leading or trailing whitespace`);
  return v;
}

/** ISO text where a Date can hold it (±8.64e15 ms); toISOString throws beyond, up to 2^53. */
function describeTime(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

function parseTimestamp(v: unknown): number | { ok: false; reason: string } {
  if (v === undefined || v === null) return fail('missing timestamp');
  let ms: number;
  if (typeof v === 'number') ms = v;
  else if (typeof v === 'string' && /^\d{1,16}$/.test(v)) ms = Number(v);
  else if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v)) ms = Date.parse(v);
  else return fail('timestamp must be epoch milliseconds or an ISO-8601 date-time');
  if (!Number.isSafeInteger(ms)) return fail('timestamp is not a whole number of milliseconds');
  return ms;
}

function parseProperties(v: unknown): { ok: true; value: Record<string, string> } | { ok: false; reason: string } {
  if (v === undefined || v === null) return { ok: true, value: {} };
  if (typeof v !== 'object' || Array.isArray(v)) return fail('properties must be an object of strings');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > LIMITS.maxProperties) return fail(`more than ${LIMITS.maxProperties} properties`);
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (k.length === 0 || k.length > LIMITS.propertyKeyMaxLength || CONTROL_CHARS.test(k)) {
      return fail('property names must be 1-128 printable characters');
    }
    if (typeof val !== 'string') return fail(`property ${JSON.stringify(k)} must be a string`);
    if (val.length > LIMITS.propertyValueMaxLength) return fail(`property ${JSON.stringify(k)} is longer than 1024 characters`);
    out[k] = val;
  }
  return { ok: true, value: out };
}

/** The Kafka message key: every copy of one event (same tenant and id) shares a partition. */
export function partitionKey(event: Pick<UsageEvent, 'tenant' | 'id'>): string {
  return `${event.tenant}\u001f${event.id}`;
}
