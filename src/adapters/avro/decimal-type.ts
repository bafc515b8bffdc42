import * as avro from 'avsc';
import { PRECISION, SCALE, formatDecimal, parseDecimal, unitsFromBytes, unitsToBytes } from '../../domain/decimal';

type AvroSchema = ConstructorParameters<typeof avro.types.LogicalType>[0];

const MAX_UNSCALED = 10n ** BigInt(PRECISION) - 1n;
const UNIT = 10 ** SCALE;
/** Beyond this, a value cannot be decimal(38, 9) even with sign-extension padding. */
const MAX_BYTES = 32;

/**
 * avsc logical type for `{"type":"bytes","logicalType":"decimal","precision":38,"scale":9}`:
 * Avro bytes (two's-complement unscaled value) <-> canonical decimal text (decimal.ts).
 * Only decimal(38, 9) is accepted, so with `assertLogicalTypes` any other decimal fails to
 * parse rather than silently reading as plain bytes at the wrong scale.
 */
export class DecimalType extends avro.types.LogicalType {
  constructor(schema: { precision?: unknown; scale?: unknown }, opts?: unknown) {
    super(schema as AvroSchema, opts);
    const precision = schema.precision;
    const scale = schema.scale ?? 0;
    if (precision !== PRECISION || scale !== SCALE) {
      throw new Error(`unsupported decimal(${String(precision)}, ${String(scale)}): only decimal(${PRECISION}, ${SCALE})`);
    }
    if (!avro.Type.isType(this.underlyingType, 'bytes')) throw new Error('decimal must have underlying type bytes');
  }

  protected override _fromValue(buf: Buffer): string {
    return decimalFromBytes(buf);
  }

  protected override _toValue(value: unknown): Buffer {
    if (typeof value !== 'string' && typeof value !== 'number') throw new Error('decimal value must be a string');
    const parsed = parseDecimal(value);
    if (!parsed.ok) throw new Error(parsed.reason);
    return unitsToBytes(parsed.units);
  }

  /** Readable: this same decimal, or plain bytes (a writer parsed without logical types). */
  protected override _resolve(writer: avro.Type): ((v: unknown) => unknown) | undefined {
    if (writer instanceof DecimalType) return (v) => v;
    if (avro.Type.isType(writer, 'bytes')) return (v) => decimalFromBytes(v as Buffer);
    return undefined;
  }

  protected override _export(schema: AvroSchema): void {
    Object.assign(schema as object, { precision: PRECISION, scale: SCALE });
  }
}

/** Same result as formatDecimal(unitsFromBytes(buf)); up to 6 bytes without bigint. */
export function decimalFromBytes(buf: Buffer): string {
  const len = buf.length;
  if (len <= 6) {
    if (len === 0) return '0';
    let n = 0;
    for (let i = 0; i < len; i += 1) n = n * 256 + buf[i]!;
    if (buf[0]! & 0x80) n -= 2 ** (8 * len);
    const abs = n < 0 ? -n : n;
    const intPart = Math.floor(abs / UNIT);
    const frac = abs - intPart * UNIT;
    const sign = n < 0 ? '-' : '';
    if (frac === 0) return `${sign}${intPart}`;
    return `${sign}${intPart}.${String(frac).padStart(SCALE, '0').replace(/0+$/, '')}`;
  }
  if (len > MAX_BYTES) throw new Error(`decimal is ${len} bytes wide; decimal(${PRECISION}, ${SCALE}) needs at most 16`);
  const units = unitsFromBytes(buf);
  if (units > MAX_UNSCALED || units < -MAX_UNSCALED) throw new Error(`decimal exceeds precision ${PRECISION}`);
  return formatDecimal(units);
}
