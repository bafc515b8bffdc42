/**
 * Hostile input for the fuzz tests: a seeded PRNG, a hand-written Avro writer for the usage
 * event layout (so nothing the real encoder would refuse stands in the way), and generators of
 * messages by category, each with the reason code the consumer must give it. Pure: no I/O.
 */
import { unitsToBytes } from '../../src/domain/decimal';
import type { RejectCode } from '../../src/domain/ingest-decision';
import { usageEventSchemas } from '../../src/adapters/avro/schemas';

/** The seed of a fuzz run: `HOSTILE_SEED` (decimal or 0x hex) or a fixed default. Printed by the tests. */
export function fuzzSeed(fallback: number): number {
  const env = process.env.HOSTILE_SEED;
  if (env === undefined || env === '') return fallback >>> 0;
  const n = Number(env);
  if (!Number.isSafeInteger(n)) throw new Error(`HOSTILE_SEED must be an integer, got ${JSON.stringify(env)}`);
  return n >>> 0;
}

/** sfc32-style small fast PRNG: deterministic for a seed, good enough for fuzzing. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i += 1) this.next();
  }
  /** Uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.next() / 0x1_0000_0000) * n);
  }
  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() / 0x1_0000_0000 < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 1) b[i] = this.int(256);
    return b;
  }
  word(min = 1, max = 12): string {
    const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
    let s = '';
    for (let i = this.range(min, max); i > 0; i -= 1) s += chars[this.int(chars.length)];
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// A raw Avro writer for schema v2's layout (v1 = the same without `source`).

export function zigzag(n: bigint): Buffer {
  let z = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  do {
    let b = Number(z & 0x7fn);
    z >>= 7n;
    if (z > 0n) b |= 0x80;
    out.push(b);
  } while (z > 0n);
  return Buffer.from(out);
}
export const avroLong = (n: number | bigint): Buffer => zigzag(BigInt(n));
export const avroBytes = (b: Buffer): Buffer => Buffer.concat([avroLong(b.length), b]);
export const avroString = (s: string | Buffer): Buffer => avroBytes(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

export interface RawEvent {
  id: string | Buffer;
  tenant: string | Buffer;
  customer: string | Buffer;
  meter: string | Buffer;
  /** Two's-complement unscaled decimal(38, 9), as on the wire. */
  value: Buffer;
  timestamp: number | bigint;
  properties: [string, string][];
  source: string | null;
}

export function avroMap(entries: [string, string][]): Buffer {
  if (entries.length === 0) return Buffer.from([0]);
  return Buffer.concat([avroLong(entries.length), ...entries.flatMap(([k, v]) => [avroString(k), avroString(v)]), Buffer.from([0])]);
}

export function encodeBodyV2(e: RawEvent): Buffer {
  return Buffer.concat([
    avroString(e.id),
    avroString(e.tenant),
    avroString(e.customer),
    avroString(e.meter),
    avroBytes(e.value),
    avroLong(e.timestamp),
    avroMap(e.properties),
    e.source === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([2]), avroString(e.source)]),
  ]);
}

const SINGLE_OBJECT = Buffer.from([0xc3, 0x01]);
export function singleObjectHeader(): Buffer {
  return Buffer.concat([SINGLE_OBJECT, usageEventSchemas().latest.fingerprintLE]);
}
export function singleObject(body: Buffer): Buffer {
  return Buffer.concat([singleObjectHeader(), body]);
}
export function confluent(schemaId: number, body: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h[0] = 0;
  h.writeInt32BE(schemaId, 1);
  return Buffer.concat([h, body]);
}

/** Decimal text -> wire bytes (no range check: that is the point). */
export function decimalBytes(text: string): Buffer {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (!m) throw new Error(`decimalBytes: ${text}`);
  const units = BigInt(m[2]! + (m[3] ?? '').padEnd(9, '0')) * (m[1] ? -1n : 1n);
  return unitsToBytes(units);
}

/** Nano-units of a decimal text (for exact expected totals). */
export function units(text: string): bigint {
  const [i, f = ''] = text.split('.');
  return BigInt(i! + f.padEnd(9, '0'));
}

// ---------------------------------------------------------------------------------------------
// Hostile messages by category.

export interface HostileContext {
  readonly rng: Rng;
  /** "Now" of the consumer (validation's clock). */
  readonly now: number;
  /** A meter the consumer knows. */
  readonly meter: string;
  /** Confluent ids that are not in the registry (none of them registered). */
  readonly unknownSchemaIds: readonly number[];
  /** Registry id of a schema that cannot be read as the latest (e.g. value: double); absent: skipped. */
  readonly unreadableSchemaId?: number;
  /** Largest id (in characters) to try in the `huge_id` category. */
  readonly hugeIdChars: number;
}

export interface HostileMessage {
  readonly category: string;
  readonly value: Buffer | null;
  /** Reason codes the consumer may give it (one, except for random bodies). */
  readonly expect: readonly RejectCode[];
  /** The reason must match this, when given. */
  readonly reason?: RegExp;
}

let fuzzSeq = 0;
/** A valid raw event (every field within the rules), to be broken by one category. */
export function validRaw(ctx: HostileContext, over: Partial<RawEvent> = {}): RawEvent {
  fuzzSeq += 1;
  return {
    id: `h-${fuzzSeq}-${ctx.rng.word(4, 8)}`,
    tenant: 'fuzz-hostile',
    customer: `c${ctx.rng.int(5)}`,
    meter: ctx.meter,
    value: decimalBytes(`${ctx.rng.int(1000)}.${ctx.rng.int(1000)}`),
    timestamp: ctx.now - ctx.rng.int(3_600_000),
    properties: [],
    source: null,
    ...over,
  };
}

const YEAR_MS = 365.25 * 86_400_000;
const CONTROL = ['\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u009f', '\n', '\t', '\r'];

type Generator = (ctx: HostileContext) => HostileMessage | null;

/**
 * Every category: a generator of one message. Categories that need the registry return null
 * when the context has no such schema.
 */
export const CATEGORIES: Record<string, Generator> = {
  random_bytes: ({ rng }) => {
    const b = rng.bytes(rng.range(1, 256));
    // Neither framing: keeps the expected code exact (framed random bodies are `random_body`).
    while (b[0] === 0x00 || b[0] === 0xc3) b[0] = rng.int(256);
    return { category: 'random_bytes', value: b, expect: ['bad_magic'], reason: /^message starts with 0x/ };
  },
  random_body: (ctx) => ({
    category: 'random_body',
    value: singleObject(ctx.rng.bytes(ctx.rng.range(0, 200))),
    expect: ['malformed_avro', 'invalid_event'],
  }),
  wrong_magic: (ctx) => {
    const { rng } = ctx;
    const body = singleObject(encodeBodyV2(validRaw(ctx)));
    const variants = [
      () => Buffer.concat([Buffer.from([0xc3, rng.pick([0x00, 0x02, 0x03, 0xff])]), body.subarray(2)]),
      () => Buffer.concat([Buffer.from([rng.pick([0x01, 0x02, 0x7b, 0xc2, 0xc4, 0xff])]), body.subarray(1)]),
      () => Buffer.from(JSON.stringify({ id: 'x', tenant: 't', customer: 'c', meter: 'm', value: '1', timestamp: 1 })),
      () => Buffer.from([0x01, 0x00]),
    ];
    return { category: 'wrong_magic', value: rng.pick(variants)(), expect: ['bad_magic'], reason: /neither Avro single-object/ };
  },
  truncated: (ctx) => {
    const full = singleObject(encodeBodyV2(validRaw(ctx, { properties: [['region', 'eu']], source: 'svc' })));
    const cut = ctx.rng.range(2, full.length - 1);
    return { category: 'truncated', value: full.subarray(0, cut), expect: ['malformed_avro'] };
  },
  trailing_bytes: (ctx) => ({
    category: 'trailing_bytes',
    value: Buffer.concat([singleObject(encodeBodyV2(validRaw(ctx))), ctx.rng.bytes(ctx.rng.range(1, 8))]),
    expect: ['malformed_avro'],
    reason: /trailing bytes|union branch|truncated|runs past/,
  }),
  unknown_fingerprint: (ctx) => {
    const fp = ctx.rng.bytes(8);
    return {
      category: 'unknown_fingerprint',
      value: Buffer.concat([Buffer.from([0xc3, 0x01]), fp, encodeBodyV2(validRaw(ctx))]),
      expect: ['unknown_schema'],
      reason: /no known schema has fingerprint/,
    };
  },
  unknown_schema_id: (ctx) => ({
    category: 'unknown_schema_id',
    value: confluent(ctx.rng.pick(ctx.unknownSchemaIds), encodeBodyV2(validRaw(ctx))),
    expect: ['unknown_schema'],
    reason: /schema id -?\d+/,
  }),
  truncated_confluent_header: ({ rng }) => ({
    category: 'truncated_confluent_header',
    value: Buffer.concat([Buffer.from([0]), rng.bytes(rng.range(0, 3))]),
    expect: ['malformed_avro'],
    reason: /Confluent header needs 5 bytes/,
  }),
  unreadable_schema: (ctx) => {
    if (ctx.unreadableSchemaId === undefined) return null;
    // The registered writer has value: double. NaN and ±Infinity are what it would carry.
    const v = Buffer.alloc(8);
    v.writeDoubleLE(ctx.rng.pick([NaN, Infinity, -Infinity, -1, 1e300]));
    const e = validRaw(ctx);
    const body = Buffer.concat([avroString(e.id), avroString(e.tenant), avroString(e.customer), avroString(e.meter), v, avroLong(e.timestamp), Buffer.from([0, 0])]);
    return { category: 'unreadable_schema', value: confluent(ctx.unreadableSchemaId, body), expect: ['unknown_schema'], reason: /cannot be read as schema v2/ };
  },
  empty: ({ rng }) => ({ category: 'empty', value: rng.chance(0.5) ? null : Buffer.alloc(0), expect: ['empty'] }),
  value_40_digits: (ctx) => {
    const digits = ctx.rng.range(30, 40);
    let text = String(ctx.rng.range(1, 9));
    while (text.length < digits) text += String(ctx.rng.int(10));
    // 30+ integer digits: beyond decimal(38, 9). The decoder refuses it while reading.
    return { category: 'value_40_digits', value: singleObject(encodeBodyV2(validRaw(ctx, { value: decimalBytes(ctx.rng.chance(0.2) ? `-${text}` : text) }))), expect: ['malformed_avro'], reason: /precision|bytes wide/ };
  },
  value_too_wide: (ctx) => ({
    // More bytes than any decimal(38, 9) needs (sign-extension padding aside).
    category: 'value_too_wide',
    value: singleObject(encodeBodyV2(validRaw(ctx, { value: ctx.rng.bytes(ctx.rng.range(33, 64)) }))),
    expect: ['malformed_avro'],
    reason: /bytes wide/,
  }),
  value_over_limit: (ctx) => {
    // 21-29 integer digits: valid decimal(38, 9), but over the per-event limit (sums would overflow).
    let text = String(ctx.rng.range(1, 9));
    for (let n = ctx.rng.range(20, 28); n > 0; n -= 1) text += String(ctx.rng.int(10));
    return { category: 'value_over_limit', value: singleObject(encodeBodyV2(validRaw(ctx, { value: decimalBytes(text) }))), expect: ['invalid_event'], reason: /exceeds 20 integer digits/ };
  },
  negative_value: (ctx) => {
    const text = ctx.rng.pick(['-1', '-0.000000001', `-${ctx.rng.int(1_000_000)}.5`, '-99999999999999999999']);
    return { category: 'negative_value', value: singleObject(encodeBodyV2(validRaw(ctx, { value: decimalBytes(text) }))), expect: ['invalid_event'], reason: /negative/ };
  },
  empty_id: (ctx) => ({ category: 'empty_id', value: singleObject(encodeBodyV2(validRaw(ctx, { id: '' }))), expect: ['invalid_event'], reason: /^missing id$/ }),
  empty_tenant_or_customer: (ctx) => {
    const field = ctx.rng.pick(['tenant', 'customer'] as const);
    return { category: 'empty_tenant_or_customer', value: singleObject(encodeBodyV2(validRaw(ctx, { [field]: '' }))), expect: ['invalid_event'], reason: new RegExp(`^missing ${field}$`) };
  },
  long_id: (ctx) => ({
    category: 'long_id',
    value: singleObject(encodeBodyV2(validRaw(ctx, { id: 'x'.repeat(ctx.rng.range(129, 10_000)) }))),
    expect: ['invalid_event'],
    reason: /^id is longer than 128 characters$/,
  }),
  huge_id: (ctx) => ({
    category: 'huge_id',
    value: singleObject(encodeBodyV2(validRaw(ctx, { id: 'H'.repeat(ctx.hugeIdChars) }))),
    expect: ['invalid_event'],
    reason: /^id is longer than 128 characters$/,
  }),
  control_chars: (ctx) => {
    const field = ctx.rng.pick(['id', 'tenant', 'customer'] as const);
    const c = ctx.rng.pick(CONTROL);
    const base = ctx.rng.word(2, 6);
    // \u001f is the partition key's separator: "a\u001fb" must never pass as a tenant or id.
    const value = ctx.rng.pick([`${base}${c}`, `${c}${base}`, `a${c}b`, `${base}${c}${base}`]);
    return { category: 'control_chars', value: singleObject(encodeBodyV2(validRaw(ctx, { [field]: value }))), expect: ['invalid_event'], reason: new RegExp(`^${field} contains control characters$`) };
  },
  whitespace_padded: (ctx) => {
    const field = ctx.rng.pick(['id', 'tenant', 'customer'] as const);
    return { category: 'whitespace_padded', value: singleObject(encodeBodyV2(validRaw(ctx, { [field]: ` ${ctx.rng.word()} ` }))), expect: ['invalid_event'], reason: /leading or trailing whitespace/ };
  },
  invalid_utf8: (ctx) => {
    const field = ctx.rng.pick(['id', 'tenant', 'customer', 'meter'] as const);
    const bad = ctx.rng.pick([Buffer.from([0x61, 0xc3, 0x28]), Buffer.from([0xff, 0xfe]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xe2, 0x82])]);
    return { category: 'invalid_utf8', value: singleObject(encodeBodyV2(validRaw(ctx, { [field]: bad }))), expect: ['malformed_avro'], reason: /not valid UTF-8/ };
  },
  bad_meter_name: (ctx) => ({
    category: 'bad_meter_name',
    value: singleObject(encodeBodyV2(validRaw(ctx, { meter: ctx.rng.pick(['api calls', "x' OR 1=1", 'a/b', '-lead', 'm'.repeat(101), 'é']) }))),
    expect: ['invalid_event'],
    reason: /^meter name must be/,
  }),
  unknown_meter: (ctx) => ({
    category: 'unknown_meter',
    value: singleObject(encodeBodyV2(validRaw(ctx, { meter: `nope_${ctx.rng.word(3, 6)}` }))),
    expect: ['unknown_meter'],
    reason: /^unknown meter "nope_/,
  }),
  timestamp_past: (ctx) => {
    // Decades back, a seconds/ms mix-up, the most negative long that decodes exactly (-2^52).
    const ts = ctx.rng.pick([0, 1, -1, ctx.now - 30 * YEAR_MS, Date.UTC(1999, 11, 31, 23, 59, 59, 999), -(2 ** 52), ctx.now / 1000]);
    return { category: 'timestamp_past', value: singleObject(encodeBodyV2(validRaw(ctx, { timestamp: BigInt(Math.floor(ts)) }))), expect: ['invalid_event'], reason: /before 2000-01-01$/ };
  },
  timestamp_future: (ctx) => {
    // Decades ahead, a µs/ms mix-up, the largest long that decodes exactly (2^52 - 1).
    const ts = ctx.rng.pick([ctx.now + 10 * YEAR_MS, ctx.now + 40 * YEAR_MS, ctx.now + 3_600_000, ctx.now * 1000, 2 ** 52 - 1]);
    return { category: 'timestamp_future', value: singleObject(encodeBodyV2(validRaw(ctx, { timestamp: BigInt(Math.floor(ts)) }))), expect: ['invalid_event'], reason: /too far in the future/ };
  },
  timestamp_beyond_2_53: (ctx) => ({
    category: 'timestamp_beyond_2_53',
    // Beyond |2^52| a float reads longs inexactly (-8.64e15 - 1 came back positive): refused.
    value: singleObject(encodeBodyV2(validRaw(ctx, { timestamp: ctx.rng.pick([2n ** 52n, -(2n ** 52n) - 1n, 8_640_000_000_000_001n, -8_640_000_000_000_001n, 2n ** 53n + 10n, -(2n ** 60n), 2n ** 62n]) }))),
    expect: ['malformed_avro'],
    reason: /integer exceeds 2\^53/,
  }),
  too_many_properties: (ctx) => ({
    category: 'too_many_properties',
    value: singleObject(encodeBodyV2(validRaw(ctx, { properties: Array.from({ length: ctx.rng.range(65, 300) }, (_, i) => [`k${i}`, 'v'] as [string, string]) }))),
    expect: ['invalid_event'],
    reason: /more than 64 properties/,
  }),
  length_bomb: (ctx) => {
    const e = validRaw(ctx);
    const upToTimestamp = Buffer.concat([avroString(e.id), avroString(e.tenant), avroString(e.customer), avroString(e.meter), avroBytes(e.value), avroLong(e.timestamp)]);
    const variants: (() => Buffer)[] = [
      // A map claiming 2^40 (or 2^62) entries, in a few bytes.
      () => Buffer.concat([upToTimestamp, avroLong(ctx.rng.pick([2n ** 40n, 2n ** 52n, 1_000_000_000n])), Buffer.from('abc')]),
      // A negative block count (size-prefixed) whose byte size lies.
      () => Buffer.concat([upToTimestamp, avroLong(-(2n ** 30n)), avroLong(3n), Buffer.from('xyz')]),
      // A string claiming a terabyte.
      () => Buffer.concat([avroLong(2n ** 40n), Buffer.from('id')]),
      // A 10+ byte varint.
      () => Buffer.concat([upToTimestamp.subarray(0, 3), Buffer.alloc(11, 0xff)]),
      // A union branch that does not exist.
      () => Buffer.concat([upToTimestamp, Buffer.from([0]), avroLong(ctx.rng.range(2, 1000)), avroString('s')]),
    ];
    return { category: 'length_bomb', value: singleObject(ctx.rng.pick(variants)()), expect: ['malformed_avro'] };
  },
  huge_property: (ctx) => {
    // A legal v2 body whose property value is enormous: the only size limit left is ours.
    return {
      category: 'huge_property',
      value: singleObject(encodeBodyV2(validRaw(ctx, { properties: [['big', 'p'.repeat(ctx.rng.range(1025, 4096))]] }))),
      expect: ['invalid_event'],
      reason: /is longer than 1024 characters/,
    };
  },
};

export const CATEGORY_NAMES = Object.keys(CATEGORIES);
