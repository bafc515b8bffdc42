/**
 * Exact decimals for usage values. A value is held as a bigint count of nano-units
 * (scale 9), matching ClickHouse `Decimal(38, 9)` and the Avro `decimal(38, 9)` logical type.
 * No JS float ever touches a value: parsing goes from text, arithmetic is on bigints.
 */
export const SCALE = 9;
export const PRECISION = 38;
const UNIT = 10n ** BigInt(SCALE);
const MAX_UNSCALED = 10n ** BigInt(PRECISION) - 1n;

export type ParsedDecimal = { ok: true; units: bigint } | { ok: false; reason: string };

const DECIMAL_RE = /^([+-])?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses a decimal from text (or from a JSON number's source text). Rejects, with a reason,
 * anything that is not finite, has more than 9 fractional digits, or exceeds 38 digits:
 * a value is never rounded silently.
 */
export function parseDecimal(input: string | number): ParsedDecimal {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, reason: `value is not finite (${input})` };
    // Number -> shortest round-trip text; exact for what a JSON number literal meant.
    input = String(input);
  }
  const text = input.trim();
  if (text.length === 0) return { ok: false, reason: 'value is empty' };
  if (text.length > 100) return { ok: false, reason: 'value is longer than 100 characters' };
  const m = DECIMAL_RE.exec(text);
  if (!m) return { ok: false, reason: `value is not a decimal number: ${JSON.stringify(text.slice(0, 40))}` };
  const [, sign, intPart = '0', fracPart = '', expPart] = m;
  let digits = intPart + fracPart;
  let scale = fracPart.length - (expPart ? Number(expPart) : 0);
  if (!Number.isSafeInteger(scale) || Math.abs(scale) > 200) return { ok: false, reason: 'value exponent out of range' };
  // Drop trailing zeros that only add scale (1.500000000000 is fine).
  while (scale > SCALE && digits.length > 1 && digits.endsWith('0')) {
    digits = digits.slice(0, -1);
    scale -= 1;
  }
  if (scale > SCALE) return { ok: false, reason: `value has more than ${SCALE} decimal places` };
  let units = BigInt(digits) * 10n ** BigInt(SCALE - scale);
  if (units > MAX_UNSCALED) return { ok: false, reason: `value exceeds ${PRECISION - SCALE} integer digits` };
  if (sign === '-') units = -units;
  return { ok: true, units };
}

/** Canonical text: no exponent, no trailing fractional zeros, "-0" never produced. */
export function formatDecimal(units: bigint): string {
  const negative = units < 0n;
  const abs = negative ? -units : units;
  const intPart = abs / UNIT;
  let frac = (abs % UNIT).toString().padStart(SCALE, '0').replace(/0+$/, '');
  const body = frac.length > 0 ? `${intPart}.${frac}` : `${intPart}`;
  return negative && abs !== 0n ? `-${body}` : body;
}

/** Integer part, rounded toward negative infinity (Stripe takes whole numbers). */
export function floorUnits(units: bigint): bigint {
  const q = units / UNIT;
  return units < 0n && units % UNIT !== 0n ? q - 1n : q;
}

/** Two's-complement big-endian bytes of the unscaled value (Avro decimal encoding), minimal length. */
export function unitsToBytes(units: bigint): Buffer {
  let len = 1;
  // Smallest len with -2^(8len-1) <= units < 2^(8len-1).
  while (units >= 1n << BigInt(8 * len - 1) || units < -(1n << BigInt(8 * len - 1))) len += 1;
  let rest = BigInt.asUintN(8 * len, units);
  const buf = Buffer.alloc(len);
  for (let i = len - 1; i >= 0; i -= 1) {
    buf[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return buf;
}

export function unitsFromBytes(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  const value = BigInt('0x' + buf.toString('hex'));
  return buf[0]! & 0x80 ? value - (1n << BigInt(buf.length * 8)) : value;
}
