import { PRECISION, SCALE, floorUnits, formatDecimal, parseDecimal, unitsFromBytes, unitsToBytes } from '../../src/domain/decimal';

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
