import { crc64Avro } from './fingerprint';

/**
 * Avro libraries disagree on the Parsing Canonical Form of a primitive annotated with a logical
 * type, so a producer that fingerprints our schema with its own library may send a fingerprint
 * that is not the spec's. The spec (and Java, avsc, Confluent) reduce the annotated primitive to
 * its bare name. These are the known deviations, each reproduced exactly here:
 *
 * - `python-avro`: Apache Avro's Python library (1.11, Debian's python3-avro 1.11.1) keeps the
 *   object form without the annotation: `{"type":"bytes"}` for the decimal, `{"type":"long"}`
 *   for timestamp-millis. usage-event.v2: 0x1b3e15b4bc0b340f.
 * - `rust-apache-avro`: the Rust apache-avro crate before AVRO-4004 keeps `logicalType`,
 *   `precision` and `scale`, in that order: `{"type":"bytes","logicalType":"decimal",
 *   "precision":38,"scale":9}`.
 *
 * The layout of the data is the same in every variant (logical types never change the binary
 * encoding), so a variant's fingerprint is an alias of the spec's: the same writer schema.
 */
export type CanonicalStyle = 'spec' | 'python-avro' | 'rust-apache-avro';

export const VARIANT_STYLES: readonly Exclude<CanonicalStyle, 'spec'>[] = ['python-avro', 'rust-apache-avro'];

const PRIMITIVES = new Set(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

/** Parsing Canonical Form of a schema as written (JSON), annotated primitives rendered per `style`. */
export function canonicalFormIn(style: CanonicalStyle, schema: unknown): string {
  return write(schema, style, undefined);
}

export function fingerprintIn(style: CanonicalStyle, schema: unknown): bigint {
  return crc64Avro(Buffer.from(canonicalFormIn(style, schema), 'utf8'));
}

function fullName(name: string, namespace: string | undefined): string {
  return name.includes('.') || !namespace ? name : `${namespace}.${name}`;
}

function write(schema: unknown, style: CanonicalStyle, namespace: string | undefined): string {
  if (typeof schema === 'string') return JSON.stringify(PRIMITIVES.has(schema) ? schema : fullName(schema, namespace));
  if (Array.isArray(schema)) return `[${schema.map((s) => write(s, style, namespace)).join(',')}]`;
  if (schema === null || typeof schema !== 'object') throw new Error(`not an Avro schema: ${JSON.stringify(schema)}`);
  const s = schema as Record<string, unknown>;
  const type = s.type;
  if (typeof type !== 'string') return write(type, style, namespace);
  if (PRIMITIVES.has(type)) return annotatedPrimitive(s, type, style);
  const parts: string[] = [];
  let ns = namespace;
  if (type === 'record' || type === 'error' || type === 'enum' || type === 'fixed') {
    const name = fullName(String(s.name), typeof s.namespace === 'string' ? s.namespace : namespace);
    ns = name.includes('.') ? name.slice(0, name.lastIndexOf('.')) : undefined;
    parts.push(`"name":${JSON.stringify(name)}`);
  }
  parts.push(`"type":${JSON.stringify(type)}`);
  if (Array.isArray(s.fields)) {
    const fields = (s.fields as Record<string, unknown>[]).map((f) => `{"name":${JSON.stringify(f.name)},"type":${write(f.type, style, ns)}}`);
    parts.push(`"fields":[${fields.join(',')}]`);
  }
  if (Array.isArray(s.symbols)) parts.push(`"symbols":${JSON.stringify(s.symbols)}`);
  if (s.items !== undefined) parts.push(`"items":${write(s.items, style, ns)}`);
  if (s.values !== undefined) parts.push(`"values":${write(s.values, style, ns)}`);
  if (s.size !== undefined) parts.push(`"size":${Number(s.size)}`);
  return `{${parts.join(',')}}`;
}

function annotatedPrimitive(s: Record<string, unknown>, type: string, style: CanonicalStyle): string {
  const logical = typeof s.logicalType === 'string' ? s.logicalType : undefined;
  if (logical === undefined || style === 'spec') return JSON.stringify(type);
  if (style === 'python-avro') return `{"type":${JSON.stringify(type)}}`;
  const parts = [`"type":${JSON.stringify(type)}`, `"logicalType":${JSON.stringify(logical)}`];
  if (s.precision !== undefined) parts.push(`"precision":${Number(s.precision)}`);
  if (s.scale !== undefined) parts.push(`"scale":${Number(s.scale)}`);
  return `{${parts.join(',')}}`;
}
