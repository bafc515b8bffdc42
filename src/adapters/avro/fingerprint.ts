import type { Type } from 'avsc';

/**
 * CRC-64-AVRO, the Rabin fingerprint the Avro spec ("Schema Fingerprints") recommends for
 * 64-bit schema fingerprints. Values are unsigned 64-bit bigints; the spec's Java reference
 * returns the same bits as a signed long.
 */
const EMPTY = 0xc15d213aa4d7a795n;

const TABLE: readonly bigint[] = Array.from({ length: 256 }, (_, i) => {
  let fp = BigInt(i);
  for (let j = 0; j < 8; j += 1) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
  return fp;
});

export function crc64Avro(data: Uint8Array): bigint {
  let fp = EMPTY;
  for (const byte of data) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(byte)) & 0xffn)]!;
  return fp;
}

/**
 * Parsing Canonical Form. avsc's `schema()` (no options) already applies the spec's
 * transformations: primitives in simple form, full names, only name/type/fields/symbols/
 * items/values/size kept, in that order, no whitespace. The unit test pins this against the
 * spec's vectors (share/test/data/schema-tests.txt in apache/avro).
 */
export function canonicalForm(type: Type): string {
  return JSON.stringify(type.schema());
}

export function schemaFingerprint(type: Type): bigint {
  return crc64Avro(Buffer.from(canonicalForm(type), 'utf8'));
}

/** The 8 bytes the single-object encoding carries: the fingerprint, little-endian. */
export function fingerprintBytes(fp: bigint): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(fp);
  return buf;
}

export function formatFingerprint(fp: bigint): string {
  return `0x${fp.toString(16).padStart(16, '0')}`;
}
