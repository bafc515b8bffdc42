import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type * as avro from 'avsc';
import { errorMessage } from '../../runtime/errors';
import { formatFingerprint } from './fingerprint';
import { sampleValue } from './sample-value';
import { parseSchema, readSchemaFiles, toSchemaVersion, type SchemaFile } from './schemas';

export interface CompatibilityProblem {
  /** The version that must read older data (or the version that failed to parse). */
  readonly readerVersion: number;
  /** The older version whose data it cannot read; null for a problem with the reader alone. */
  readonly writerVersion: number | null;
  /** The top-level field at fault, when one can be named. */
  readonly field: string | null;
  readonly message: string;
}

interface Parsed {
  readonly version: number;
  readonly raw: unknown;
  readonly type: avro.Type;
}

type RecordType = avro.Type & { fields: Field[] };
type Field = { name: string; type: avro.Type; aliases: string[]; defaultValue(): unknown };

/**
 * BACKWARD_TRANSITIVE: every version must read data written with every older version (what
 * the decoder does: any writer resolved into the latest reader). Removing a field is
 * therefore allowed; adding one needs a default; a field's type may change only by an Avro
 * promotion and must keep its logical type.
 */
export function checkCompatibility(schemas: readonly { version: number; schema: unknown }[]): CompatibilityProblem[] {
  const problems: CompatibilityProblem[] = [];
  const parsed: Parsed[] = [];
  const sorted = [...schemas].sort((a, b) => a.version - b.version);
  for (const [i, s] of sorted.entries()) {
    if (i > 0 && sorted[i - 1]!.version === s.version) {
      problems.push({ readerVersion: s.version, writerVersion: null, field: null, message: `v${s.version}: version appears twice` });
      continue;
    }
    try {
      parsed.push({ version: s.version, raw: s.schema, type: parseSchema(s.schema) });
    } catch (err) {
      problems.push({ readerVersion: s.version, writerVersion: null, field: null, message: `v${s.version}: invalid schema: ${errorMessage(err)}` });
    }
  }
  for (const [j, reader] of parsed.entries()) {
    for (const writer of parsed.slice(0, j)) problems.push(...checkPair(reader, writer));
  }
  return problems;
}

function checkPair(reader: Parsed, writer: Parsed): CompatibilityProblem[] {
  const pair = `v${writer.version} data read as v${reader.version}`;
  const problem = (field: string | null, what: string): CompatibilityProblem => ({
    readerVersion: reader.version,
    writerVersion: writer.version,
    field,
    message: `${pair}: ${field === null ? '' : `field "${field}" `}${what}`,
  });
  const problems = isRecord(reader.type) && isRecord(writer.type) ? fieldProblems(reader, writer, problem) : [];
  let resolver: avro.Resolver;
  try {
    resolver = reader.type.createResolver(writer.type);
  } catch (err) {
    return problems.length > 0 ? problems : [problem(null, `cannot be resolved: ${errorMessage(err)}`)];
  }
  if (problems.length > 0) return problems;
  // Resolution rules aside, prove it on bytes: encode a sample as the writer, decode as the reader.
  try {
    const sample = sampleValue(writer.type) as Record<string, unknown>;
    const read = reader.type.fromBuffer(writer.type.toBuffer(sample), resolver) as Record<string, unknown>;
    if (isRecord(reader.type) && isRecord(writer.type)) {
      for (const f of reader.type.fields) {
        const w = writerField(writer.type, f);
        const sameType = w !== undefined && JSON.stringify(w.type.schema()) === JSON.stringify(f.type.schema());
        if (w && sameType && !isDeepStrictEqual(read[f.name], sample[w.name])) {
          problems.push(problem(f.name, `reads the sample ${JSON.stringify(sample[w.name])} back as ${JSON.stringify(read[f.name])}`));
        }
      }
    }
  } catch (err) {
    problems.push(problem(null, `sample round trip failed: ${errorMessage(err)}`));
  }
  return problems;
}

function fieldProblems(reader: Parsed, writer: Parsed, problem: (field: string | null, what: string) => CompatibilityProblem) {
  const r = reader.type as RecordType;
  const w = writer.type as RecordType;
  const problems: CompatibilityProblem[] = [];
  for (const f of r.fields) {
    const old = writerField(w, f);
    if (!old) {
      if (f.defaultValue() === undefined) problems.push(problem(f.name, `is added without a default, so v${writer.version} data has no value for it`));
      continue;
    }
    try {
      f.type.createResolver(old.type);
    } catch {
      problems.push(problem(f.name, `changes type from ${JSON.stringify(old.type.schema())} to ${JSON.stringify(f.type.schema())}, which Avro cannot promote`));
      continue;
    }
    const before = logicalTypeOf(rawField(writer.raw, old.name));
    const after = logicalTypeOf(rawField(reader.raw, f.name));
    if (before !== after) problems.push(problem(f.name, `changes logical type from ${before} to ${after}`));
  }
  return problems;
}

/** The writer field a reader field reads from: same name, else one of the reader's aliases. */
function writerField(writer: RecordType, f: Field): Field | undefined {
  return writer.fields.find((w) => w.name === f.name) ?? writer.fields.find((w) => f.aliases.includes(w.name));
}

function isRecord(type: avro.Type): type is RecordType {
  return type.typeName === 'record';
}

function rawField(raw: unknown, name: string): unknown {
  const fields = (raw as { fields?: { name?: unknown; type?: unknown }[] }).fields ?? [];
  return fields.find((f) => f.name === name)?.type;
}

/** "decimal(38,9)", "timestamp-millis", "none"; union branches joined with "|". */
function logicalTypeOf(schema: unknown): string {
  if (Array.isArray(schema)) return schema.map(logicalTypeOf).join('|');
  if (schema === null || typeof schema !== 'object') return 'none';
  const s = schema as Record<string, unknown>;
  if (typeof s.logicalType !== 'string') return typeof s.type === 'object' ? logicalTypeOf(s.type) : 'none';
  return s.logicalType === 'decimal' ? `decimal(${String(s.precision)},${String(s.scale ?? 0)})` : s.logicalType;
}

/** `meterline schemas check`: one line per schema and per version pair. */
export function runSchemasCheck(dir: string): { ok: boolean; lines: string[] } {
  let files: SchemaFile[];
  try {
    files = readSchemaFiles(path.resolve(dir));
  } catch (err) {
    return { ok: false, lines: [`FAIL cannot read schemas from ${dir}: ${errorMessage(err)}`] };
  }
  if (files.length === 0) return { ok: false, lines: [`FAIL no usage-event.v<N>.avsc files in ${dir}`] };
  const lines: string[] = [];
  for (const f of files) {
    try {
      const v = toSchemaVersion(f);
      const aliases = v.aliases.map((a) => `${formatFingerprint(a.fingerprint)} as ${a.style} computes it`).join(', ');
      lines.push(`v${f.version} ${path.basename(f.file)} fingerprint ${formatFingerprint(v.fingerprint)} (CRC-64-AVRO)${aliases ? `; also accepted: ${aliases}` : ''}`);
    } catch {
      lines.push(`v${f.version} ${path.basename(f.file)}`);
    }
  }
  const problems = checkCompatibility(files.map((f) => ({ version: f.version, schema: f.raw })));
  const unparsed = new Set(problems.filter((p) => p.writerVersion === null).map((p) => p.readerVersion));
  for (const [j, reader] of files.entries()) {
    for (const writer of files.slice(0, j)) {
      const failed = problems.some((p) => p.readerVersion === reader.version && p.writerVersion === writer.version);
      if (!failed && !unparsed.has(reader.version) && !unparsed.has(writer.version)) {
        lines.push(`ok   v${writer.version} data read as v${reader.version}`);
      }
    }
  }
  for (const p of problems) lines.push(`FAIL ${p.message}`);
  lines.push(problems.length === 0 ? `${files.length} schema versions, all compatible` : `${problems.length} compatibility problems`);
  return { ok: problems.length === 0, lines };
}
