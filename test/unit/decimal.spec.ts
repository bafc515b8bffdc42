import { PRECISION, SCALE, floorUnits, formatDecimal, parseDecimal, unitsFromBytes, unitsToBytes } from '../../src/domain/decimal';
import { LIMITS, validateEvent } from '../../src/domain/usage-event';
import { Rng } from '../helpers/hostile-input';

function units(input: string | number): bigint {
  const parsed = parseDecimal(input);
  if (!parsed.ok) throw new Error(parsed.reason);
  return parsed.units;
}

function reason(input: string | number): string {
  const parsed = parseDecimal(input);
  if (parsed.ok) throw new Error(`expected ${String(input)} to be rejected`);
  return parsed.reason;
}

const MAX = '99999999999999999999999999999.999999999'; // 29 + 9 = 38 digits

describe('parseDecimal / formatDecimal', () => {
  it('is scale 9, precision 38', () => {
    expect([PRECISION, SCALE]).toEqual([38, 9]);
  });

  it.each(['0', '1', '-1', '0.1', '-0.1', '123.456', '0.000000001', '-0.000000001', '1000000', MAX, `-${MAX}`])(
    'round-trips canonical %s',
    (text) => {
      expect(formatDecimal(units(text))).toBe(text);
    },
  );

  it.each([
    ['1.50', '1.5'],
    ['+2', '2'],
    ['-0', '0'],
    ['-0.000', '0'],
    ['007', '7'],
    ['1e3', '1000'],
    ['1.5E-3', '0.0015'],
    ['1.5000000000000', '1.5'],
    [' 42 ', '42'],
  ])('canonicalises %s to %s', (input, canonical) => {
    expect(formatDecimal(units(input))).toBe(canonical);
  });

  it('holds 0.1 exactly, so 0.1 + 0.2 is 0.3', () => {
    expect(units('0.1')).toBe(100_000_000n);
    expect(formatDecimal(units('0.1') + units('0.2'))).toBe('0.3');
    expect(formatDecimal(units(0.1) + units(0.2))).toBe('0.3');
  });

  it('takes JS numbers by their shortest text', () => {
    expect(formatDecimal(units(0.1))).toBe('0.1');
    expect(formatDecimal(units(-2.5))).toBe('-2.5');
    expect(formatDecimal(units(1e-7))).toBe('0.0000001');
    expect(formatDecimal(units(1e21))).toBe('1000000000000000000000');
  });

  it('accepts exactly 38 digits and rejects 39', () => {
    expect(units(MAX)).toBe(10n ** 38n - 1n);
    expect(units(`-${MAX}`)).toBe(-(10n ** 38n - 1n));
    expect(reason('100000000000000000000000000000')).toMatch(/exceeds 29 integer digits/);
    expect(reason('1e29')).toMatch(/exceeds 29 integer digits/);
  });

  it('rejects more than 9 decimal places instead of rounding', () => {
    expect(reason('0.0000000001')).toMatch(/more than 9 decimal places/);
    expect(reason('1.1234567891')).toMatch(/more than 9 decimal places/);
    expect(reason(1e-10)).toMatch(/more than 9 decimal places/);
  });

  it.each([NaN, Infinity, -Infinity])('rejects the number %s', (n) => {
    expect(reason(n)).toMatch(/not finite/);
  });

  it.each(['NaN', 'Infinity', '-Infinity', '', '  ', 'abc', '1.', '.5', '1,5', '0x10', '1e', '--1'])('rejects the text %j', (text) => {
    expect(reason(text)).toBeTruthy();
  });

  it('rejects absurd exponents and lengths', () => {
    expect(reason('1e400')).toMatch(/exponent out of range/);
    expect(reason('1'.repeat(101))).toMatch(/longer than 100/);
  });

  it('floors toward negative infinity', () => {
    expect(floorUnits(units('1.9'))).toBe(1n);
    expect(floorUnits(units('-1.1'))).toBe(-2n);
    expect(floorUnits(units('-2'))).toBe(-2n);
  });
});

describe('unitsToBytes / unitsFromBytes (Avro decimal bytes)', () => {
  it.each([
    [0n, '00'],
    [1n, '01'],
    [-1n, 'ff'],
    [127n, '7f'],
    [128n, '0080'],
    [-128n, '80'],
    [-129n, 'ff7f'],
    [255n, '00ff'],
    [256n, '0100'],
    [-256n, 'ff00'],
    [32767n, '7fff'],
    [-32768n, '8000'],
    [-32769n, 'ff7fff'],
    [1_000_000_000n, '3b9aca00'],
    [-1_000_000_000n, 'c4653600'],
  ])('%s is the minimal two\'s complement %s', (value, hex) => {
    expect(unitsToBytes(value).toString('hex')).toBe(hex);
    expect(unitsFromBytes(Buffer.from(hex, 'hex'))).toBe(value);
  });

  it('round-trips around every power of two up to 2^130, and the decimal(38) bounds', () => {
    const values: bigint[] = [10n ** 38n - 1n, -(10n ** 38n - 1n)];
    for (let k = 0n; k <= 130n; k += 1n) {
      for (const v of [1n << k, (1n << k) - 1n, (1n << k) + 1n]) values.push(v, -v);
    }
    for (const v of values) {
      const bytes = unitsToBytes(v);
      expect(unitsFromBytes(bytes)).toBe(v);
      // Minimal: dropping the first byte would change the value.
      if (bytes.length > 1) expect(unitsFromBytes(bytes.subarray(1))).not.toBe(v);
    }
    expect(unitsToBytes(10n ** 38n - 1n)).toHaveLength(16);
  });

  it('reads empty bytes as zero and honours sign-extension padding', () => {
    expect(unitsFromBytes(Buffer.alloc(0))).toBe(0n);
    expect(unitsFromBytes(Buffer.from('ffff80', 'hex'))).toBe(-128n);
    expect(unitsFromBytes(Buffer.from('000080', 'hex'))).toBe(128n);
  });
});

describe('usage values in validation: canonical text taken as it is, every other form canonicalised', () => {
  const base = { id: 'e', tenant: 't', customer: 'c', meter: 'm', timestamp: Date.UTC(2026, 10, 29) };
  const opts = { now: Date.UTC(2026, 10, 29), maxFutureSkewMs: 0 };
  // What validation did before canonical text had a shortcut: parse, bound, format.
  const reference = (v: string): string | null => {
    const p = parseDecimal(v);
    if (!p.ok || p.units < 0n || p.units > 10n ** BigInt(LIMITS.valueMaxIntegerDigits + SCALE) - 1n) return null;
    return formatDecimal(p.units);
  };
  const digits = (rng: Rng, n: number) => Array.from({ length: n }, () => String(rng.int(10))).join('');

  it('given 20,000 random values around every limit (signs, zeros, digits, exponents), then the value or the refusal is the reference one', () => {
    const rng = new Rng(16);
    let canonical = 0;
    for (let i = 0; i < 20_000; i += 1) {
      const sign = ['', '', '', '-', '+'][rng.int(5)]!;
      const int = `${'0'.repeat(rng.int(3) === 0 ? rng.int(3) : 0)}${digits(rng, rng.int(23))}` || '0';
      const frac = rng.int(3) === 0 ? '' : `.${digits(rng, rng.int(12))}${'0'.repeat(rng.int(3))}`;
      const exp = rng.int(10) === 0 ? `e${rng.int(5) - 2}` : '';
      const v = `${sign}${int}${frac}${exp}`;
      const got = validateEvent({ ...base, value: v }, opts);
      const want = reference(v);
      if (want === null) expect(got.ok).toBe(false);
      else expect(got.ok && got.event.value).toBe(want);
      if (want === v) canonical += 1;
    }
    // Both paths were exercised.
    expect(canonical).toBeGreaterThan(1_000);
    expect(canonical).toBeLessThan(19_000);
  });

  it('takes 20 integer digits and refuses 21, and keeps "0" and nine fractional digits exact', () => {
    const ok = (v: string) => validateEvent({ ...base, value: v }, opts);
    expect(ok('99999999999999999999.999999999')).toMatchObject({ ok: true, event: { value: '99999999999999999999.999999999' } });
    expect(ok('100000000000000000000')).toMatchObject({ ok: false, reason: 'value exceeds 20 integer digits' });
    expect(ok('0')).toMatchObject({ ok: true, event: { value: '0' } });
    expect(ok('0.000000001')).toMatchObject({ ok: true, event: { value: '0.000000001' } });
    expect(ok('0.0000000001')).toMatchObject({ ok: false });
    expect(ok('-0')).toMatchObject({ ok: true, event: { value: '0' } });
    expect(ok('-1')).toMatchObject({ ok: false, reason: 'value is negative: usage values must be zero or more' });
  });
});
