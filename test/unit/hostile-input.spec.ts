/**
 * Hostile input, pure tier: the decoder and the validator (no Kafka, no ClickHouse) against
 * every category of hostile message and tens of thousands of random and mutated ones.
 * Seeded: HOSTILE_SEED=<n> npx jest test/unit/hostile-input.spec.ts --selectProjects unit
 */
import { createDecoder, createSingleObjectEncoder, type Decoded } from '../../src/adapters/avro/codec';
import { usageEventSchemas } from '../../src/adapters/avro/schemas';
import { classifyMessage, type RejectCode } from '../../src/domain/ingest-decision';
import { parseMeterCatalog } from '../../src/domain/meters';
import { parseEventLine } from '../../src/domain/ndjson';
import { partitionKey, validateEvent, type UsageEvent } from '../../src/domain/usage-event';
import { parseDecimal } from '../../src/domain/decimal';
import { CATEGORIES, CATEGORY_NAMES, Rng, avroLong, encodeBodyV2, fuzzSeed, singleObject, validRaw, type HostileContext } from '../helpers/hostile-input';

const SEED = fuzzSeed(0x6d657465);
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const OPTS = { now: NOW, maxFutureSkewMs: 300_000 };
const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'sum' }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meters = parsed.catalog;
const DECODE_CODES = new Set(['empty', 'bad_magic', 'unknown_schema', 'malformed_avro']);
const REJECT_CODES = new Set<RejectCode>(['empty', 'bad_magic', 'unknown_schema', 'malformed_avro', 'invalid_event', 'unknown_meter']);
const REF = { topic: 'usage.events', partition: 0, offset: '0' };

beforeAll(() => {
  process.stdout.write(`hostile-input (unit): seed ${SEED} (override with HOSTILE_SEED)\n`);
});

/** Why a decode result is not a well-typed value, or null. */
function untyped(r: Decoded | undefined): string | null {
  if (r === undefined) return 'no result';
  if (r.ok) return r.record !== null && typeof r.record === 'object' && !Array.isArray(r.record) ? null : 'ok without a record object';
  if (!DECODE_CODES.has(r.code)) return `unknown code ${String(r.code)}`;
  return typeof r.reason === 'string' && r.reason.length > 0 && r.reason.length <= 500 ? null : `bad reason ${JSON.stringify(r.reason).slice(0, 80)}`;
}

/** An accepted event must obey every rule of the README's event table. */
function ruleBroken(e: UsageEvent): string | null {
  const printable = (s: string) => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && s.trim() === s && s.length > 0;
  if (!printable(e.id) || e.id.length > 128) return `id ${JSON.stringify(e.id).slice(0, 40)}`;
  if (!printable(e.tenant) || !printable(e.customer)) return 'tenant/customer';
  const v = parseDecimal(e.value);
  if (!v.ok || v.units < 0n || v.units >= 10n ** 29n) return `value ${e.value}`;
  if (!(e.timestamp >= Date.UTC(2000, 0, 1) && e.timestamp <= NOW + 300_000)) return `timestamp ${e.timestamp}`;
  return null;
}

describe('every hostile category is a dead letter with its reason code (decoder + validation)', () => {
  const ctx: HostileContext = { rng: new Rng(SEED), now: NOW, meter: 'api_calls', unknownSchemaIds: [0, -1, 7, 2 ** 31 - 1], hugeIdChars: 1024 * 1024 };
  const decoder = createDecoder();

  it.each(CATEGORY_NAMES.filter((c) => c !== 'unreadable_schema'))('%s', async (category) => {
    const n = category === 'huge_id' ? 3 : 200;
    const messages = Array.from({ length: n }, () => CATEGORIES[category]!(ctx)!);
    const decoded = await decoder.decodeMany(messages.map((m) => m.value));
    const wrong: unknown[] = [];
    messages.forEach((m, i) => {
      const r = classifyMessage(REF, null, m.value, decoded[i]!, meters, OPTS);
      if (!('rejection' in r)) wrong.push({ accepted: r.candidate.event });
      else if (!m.expect.includes(r.rejection.code) || (m.reason && !m.reason.test(r.rejection.reason))) {
        wrong.push({ code: r.rejection.code, reason: r.rejection.reason, hex: m.value?.subarray(0, 48).toString('hex') });
      }
    });
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});

describe('random and mutated bytes: the decoder never throws and always returns a typed result', () => {
  const ITERATIONS = Number(process.env.HOSTILE_ITERATIONS ?? 50_000);

  it(`${ITERATIONS} inputs, each one a candidate that obeys the rules or a rejection with a known code`, async () => {
    const rng = new Rng(SEED ^ 0x5bd1e995);
    const { versions, latest } = usageEventSchemas();
    const encoder = createSingleObjectEncoder();
    const corpus: Buffer[] = [];
    for (let i = 0; i < 20; i += 1) {
      const e: UsageEvent = {
        id: `evt-${i}`,
        tenant: rng.pick(['acme', 'a', 'tenant-with-long-name']),
        customer: `c${i}`,
        meter: 'api_calls',
        value: rng.pick(['0', '1', '0.000000001', '12345.678', '99999999999999999999.999999999']),
        timestamp: NOW - rng.int(86_400_000),
        properties: i % 2 ? { region: 'eu', plan: 'pro' } : {},
        source: i % 3 ? 'svc' : null,
      };
      corpus.push(await encoder.encode(e));
      const { source: _s, ...v1 } = e;
      corpus.push(Buffer.concat([Buffer.from([0xc3, 0x01]), versions[0]!.fingerprintLE, versions[0]!.type.toBuffer(v1)]));
      corpus.push(Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), latest.type.toBuffer(e)]));
    }
    const mutate = (b: Buffer): Buffer => {
      const out = Buffer.from(b);
      switch (rng.int(8)) {
        case 0: // flip bits
          for (let k = rng.range(1, 4); k > 0; k -= 1) out[rng.int(out.length)]! ^= 1 << rng.int(8);
          return out;
        case 1: // random byte values
          for (let k = rng.range(1, 4); k > 0; k -= 1) out[rng.range(10, out.length - 1)] = rng.int(256);
          return out;
        case 2: // truncate
          return out.subarray(0, rng.int(out.length));
        case 3: // insert
          return Buffer.concat([out.subarray(0, rng.int(out.length)), rng.bytes(rng.range(1, 16)), out.subarray(rng.int(out.length))]);
        case 4: // delete a range
          return Buffer.concat([out.subarray(0, rng.int(out.length)), out.subarray(rng.int(out.length))]);
        case 5: // splice two encodings
          return Buffer.concat([out.subarray(0, rng.int(out.length)), rng.pick(corpus).subarray(rng.int(40))]);
        case 6: // a huge varint somewhere in the body
          return Buffer.concat([out.subarray(0, rng.range(10, out.length)), avroLong(rng.pick([2n ** 40n, -(2n ** 40n), 2n ** 62n, 127n])), out.subarray(rng.range(10, out.length))]);
        default: // a framed random body
          return singleObject(rng.bytes(rng.range(0, 120)));
      }
    };
    const inputs = (): (Buffer | null)[] =>
      Array.from({ length: 1000 }, () => {
        const k = rng.int(10);
        if (k < 6) return mutate(rng.pick(corpus));
        if (k < 9) {
          const b = rng.bytes(rng.range(0, 300));
          if (b.length > 1 && rng.chance(0.5)) [b[0], b[1]] = rng.chance(0.5) ? [0xc3, 0x01] : [0x00, b[1]!];
          return b;
        }
        return rng.chance(0.1) ? null : Buffer.from(rng.pick(corpus));
      });

    const decoder = createDecoder();
    const problems: unknown[] = [];
    const byOutcome: Record<string, number> = {};
    let slowest = 0;
    for (let done = 0; done < ITERATIONS; done += 1000) {
      const batch = inputs();
      const started = performance.now();
      let decoded: Decoded[];
      try {
        decoded = await decoder.decodeMany(batch);
      } catch (err) {
        problems.push({ threw: String(err) });
        continue;
      }
      slowest = Math.max(slowest, performance.now() - started);
      batch.forEach((buf, i) => {
        const bad = untyped(decoded[i]);
        if (bad) problems.push({ bad, hex: buf?.subarray(0, 40).toString('hex') });
        let r: ReturnType<typeof classifyMessage>;
        try {
          r = classifyMessage(REF, null, buf, decoded[i]!, meters, OPTS);
        } catch (err) {
          problems.push({ classifyThrew: String(err), hex: buf?.toString('hex') });
          return;
        }
        if ('candidate' in r) {
          const broken = ruleBroken(r.candidate.event);
          if (broken) problems.push({ acceptedBreakingRule: broken });
          byOutcome.accepted = (byOutcome.accepted ?? 0) + 1;
        } else {
          if (!REJECT_CODES.has(r.rejection.code) || r.rejection.reason.length === 0) problems.push({ rejection: r.rejection.code });
          byOutcome[r.rejection.code] = (byOutcome[r.rejection.code] ?? 0) + 1;
        }
      });
    }
    process.stdout.write(`hostile-input (unit): ${ITERATIONS} random/mutated inputs -> ${JSON.stringify(byOutcome)}; slowest 1000-input batch ${slowest.toFixed(1)} ms\n`);
    expect(problems.slice(0, 5)).toEqual([]);
    // Every outcome was exercised, so the fuzz is not stuck in one branch.
    for (const code of ['accepted', 'bad_magic', 'unknown_schema', 'malformed_avro', 'invalid_event', 'empty']) expect(byOutcome[code]).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(2_000);
  });
});

describe('the validator on arbitrary values (NDJSON or decoded records) never throws', () => {
  const ITERATIONS = Number(process.env.HOSTILE_ITERATIONS ?? 50_000);
  const good = { id: 'e1', tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: NOW - 1000 };

  it(`${ITERATIONS} records with hostile field values: a typed result every time`, () => {
    const rng = new Rng(SEED ^ 0x27d4eb2d);
    const big = 'x'.repeat(1024 * 1024);
    const hostileValues: unknown[] = [
      NaN, Infinity, -Infinity, -0, 0, -1, 1e308, -1e308, 5e-324, 2 ** 53, -(2 ** 53), 8.64e15 + 1, -8.64e15 - 1, 9007199254740991,
      'NaN', 'Infinity', '-Infinity', '+Infinity', 'nan', '1e400', '1e-400', '-1', '-0', '+1', '0x10', '1_000', ' 1', '1 ', '', ' ',
      '9'.repeat(40), `0.${'1'.repeat(10)}`, '1e20', '1e21', '1e-9', '1e-10', '1.', '.5', '--1', '1e', 'e1',
      '\u0000', '\u001f', 'a\u001fb', 'b\u001fc', '\u0085', '\u2028', '\ud800', big, '{x:String}', "' OR 1=1 --", '\\', '../../etc/passwd',
      null, undefined, true, false, {}, [], [1], { toString: 'x' }, Object.create(null), 10n,
      '1970-01-01T00:00:00Z', '2200-01-01T00:00:00Z', '+275760-09-13T00:00:00Z', '2026-13-45T99:99:99Z', '9999999999999999', '0000000000000001',
    ];
    const nested = hostileValues.filter((x) => x !== big);
    const fields = ['id', 'tenant', 'customer', 'meter', 'value', 'timestamp', 'properties', 'source', '__proto__', 'constructor', 'extra'];
    const problems: unknown[] = [];
    const counts = { ok: 0, rejected: 0 };
    for (let i = 0; i < ITERATIONS; i += 1) {
      const rec: Record<string, unknown> = { ...good };
      for (let k = rng.range(1, 3); k > 0; k -= 1) {
        const f = rng.pick(fields);
        const v = rng.chance(0.1) ? Object.fromEntries(Array.from({ length: rng.range(0, 70) }, (_, j) => [rng.chance(0.9) ? `k${j}` : rng.pick(['', '\u0000', big.slice(0, 200)]), rng.pick(nested)])) : rng.pick(hostileValues);
        Object.defineProperty(rec, f, { value: v, enumerable: true, configurable: true, writable: true });
      }
      try {
        const r = validateEvent(rec, OPTS);
        if (r.ok) {
          counts.ok += 1;
          const broken = ruleBroken(r.event);
          if (broken) problems.push({ acceptedBreakingRule: broken, rec: Object.keys(rec) });
        } else {
          counts.rejected += 1;
          if (typeof r.reason !== 'string' || r.reason.length === 0 || r.reason.length > 500) problems.push({ reason: r.reason?.slice(0, 80) });
        }
        // The same record as an NDJSON line, where JSON can express it (megabyte lines now and then).
        const huge = Object.values(rec).some((x) => x === big);
        if (!huge || i % 500 === 0) {
          const line = JSON.stringify(rec, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
          if (line !== undefined) parseEventLine(line, OPTS);
        }
      } catch (err) {
        problems.push({ threw: String(err), keys: Object.keys(rec) });
      }
    }
    process.stdout.write(`hostile-input (unit): ${ITERATIONS} hostile records -> ${JSON.stringify(counts)}\n`);
    expect(problems.slice(0, 5)).toEqual([]);
    expect(counts.ok).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(0);
  });
});

describe('validation rules found by the fuzz', () => {
  const v = (over: Record<string, unknown>) => validateEvent({ ...{ id: 'e1', tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: NOW - 1000 }, ...over }, OPTS);

  it('refuses negative values (usage is a quantity; no correction flow exists)', () => {
    for (const value of ['-1', '-0.000000001', -5, '-1e3']) expect(v({ value })).toEqual({ ok: false, reason: 'value is negative: usage values must be zero or more' });
    expect(v({ value: '-0' })).toMatchObject({ ok: true, event: { value: '0' } });
    expect(v({ value: '0' })).toMatchObject({ ok: true });
  });

  it('refuses a value past 20 integer digits: ClickHouse sums of Decimal(38, 9) wrap silently', () => {
    expect(v({ value: '99999999999999999999.999999999' })).toMatchObject({ ok: true });
    expect(v({ value: '100000000000000000000' })).toEqual({ ok: false, reason: 'value exceeds 20 integer digits' });
    expect(v({ value: '99999999999999999999999999999' })).toEqual({ ok: false, reason: 'value exceeds 20 integer digits' });
    // A billion maximal events still fit in one Decimal(38, 9) total (max ≈ 1.7e29).
    expect(10n ** 20n * 10n ** 9n < 17n * 10n ** 28n).toBe(true);
  });

  it('refuses NaN, ±Infinity and non-decimal text with a reason', () => {
    for (const value of [NaN, Infinity, -Infinity]) expect(v({ value })).toMatchObject({ ok: false, reason: expect.stringMatching(/^value is not finite/) });
    for (const value of ['NaN', 'Infinity', '-Infinity', '0x10', '1_000']) expect(v({ value })).toMatchObject({ ok: false, reason: expect.stringMatching(/^value is not a decimal number/) });
  });

  it('gives a reason (instead of throwing RangeError) for timestamps beyond what a Date can hold', () => {
    expect(v({ timestamp: 8.64e15 + 1 })).toEqual({ ok: false, reason: 'timestamp 8640000000000001 ms is too far in the future' });
    expect(v({ timestamp: 2 ** 53 - 1 })).toEqual({ ok: false, reason: 'timestamp 9007199254740991 ms is too far in the future' });
    expect(v({ timestamp: -(2 ** 53) + 1 })).toEqual({ ok: false, reason: 'timestamp -9007199254740991 ms is before 2000-01-01' });
    expect(parseEventLine(`{"id":"e","tenant":"t","customer":"c","meter":"m","value":1,"timestamp":8700000000000000}`, OPTS)).toMatchObject({ ok: false });
  });

  it('refuses longs beyond ±2^52 rather than reading them inexactly (a negative timestamp came back positive)', async () => {
    const ctx: HostileContext = { rng: new Rng(SEED), now: NOW, meter: 'api_calls', unknownSchemaIds: [], hugeIdChars: 1 };
    const body = (timestamp: bigint) => singleObject(encodeBodyV2(validRaw(ctx, { timestamp })));
    const [edge, beyond] = await createDecoder().decodeMany([body(-(2n ** 52n)), body(-8_640_000_000_000_001n)]);
    expect(edge).toMatchObject({ ok: true, record: { timestamp: -(2 ** 52) } });
    expect(beyond).toMatchObject({ ok: false, code: 'malformed_avro', reason: expect.stringMatching(/^timestamp: integer exceeds 2\^53/) });
  });

  it('turns a record that makes validation itself throw into a dead letter, not a stalled partition', () => {
    const poison = { get id(): string { throw new RangeError('Invalid time value'); } } as unknown as Record<string, unknown>;
    const r = classifyMessage(REF, null, Buffer.from('x'), { ok: true, record: poison }, meters, OPTS);
    expect(r).toMatchObject({ rejection: { code: 'invalid_event', reason: 'event could not be validated: Invalid time value' } });
  });

  it('never lets the partition key separator (\\u001f) into a tenant or id, so the key cannot be ambiguous', () => {
    expect(v({ tenant: 'a\u001fb', id: 'c' })).toEqual({ ok: false, reason: 'tenant contains control characters' });
    expect(v({ tenant: 'a', id: 'b\u001fc' })).toEqual({ ok: false, reason: 'id contains control characters' });
    // On valid events the key is injective: equal keys mean equal (tenant, id).
    const rng = new Rng(SEED);
    const seen = new Map<string, string>();
    const alphabet = ['a', 'b', '-', ':', '/', ' x', "'", '"', '\\', 'é', '\u2028'];
    for (let i = 0; i < 5000; i += 1) {
      const tenant = Array.from({ length: rng.range(1, 4) }, () => rng.pick(alphabet)).join('').trim() || 'a';
      const id = Array.from({ length: rng.range(1, 4) }, () => rng.pick(alphabet)).join('').trim() || 'a';
      const r = v({ tenant, id });
      if (!r.ok) continue;
      const k = partitionKey(r.event);
      const pair = JSON.stringify([r.event.tenant, r.event.id]);
      expect(seen.get(k) ?? pair).toBe(pair);
      seen.set(k, pair);
    }
  });
});
