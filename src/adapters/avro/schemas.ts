import * as fs from 'node:fs';
import * as path from 'node:path';
import * as avro from 'avsc';
import { DecimalType } from './decimal-type';
import { VARIANT_STYLES, fingerprintIn, type CanonicalStyle } from './canonical-variants';
import { canonicalForm, fingerprintBytes, schemaFingerprint } from './fingerprint';
import { projectRoot } from '../../runtime/project-root';

export interface SchemaFile {
  readonly version: number;
  readonly file: string;
  /** The schema JSON as written in the file. */
  readonly raw: unknown;
}

export interface SchemaVersion extends SchemaFile {
  readonly type: avro.Type;
  readonly canonical: string;
  readonly fingerprint: bigint;
  /** `fingerprint` as the 8 little-endian bytes of a single-object header. */
  readonly fingerprintLE: Buffer;
  /**
   * Fingerprints other Avro libraries compute for this same schema (canonical-variants.ts),
   * accepted as aliases of `fingerprint`. Only those that differ from it are listed.
   */
  readonly aliases: readonly { readonly style: CanonicalStyle; readonly fingerprint: bigint }[];
}

const FILE_RE = /^usage-event\.v(\d+)\.avsc$/;

/**
 * avsc options for every meterline Avro type. A fresh object each call: avsc mutates the
 * options it is given (it stores its name registry there).
 * - decimal(38, 9) reads as canonical decimal text; any other decimal is a parse error.
 * - timestamp-millis stays a plain number (no logical type registered for it).
 * - records are plain objects without avsc's helper methods.
 */
export function avroTypeOptions(): Partial<avro.ForSchemaOptions> {
  return {
    logicalTypes: { decimal: DecimalType as unknown as avro.ForSchemaOptions['logicalTypes'][string] },
    assertLogicalTypes: true,
    omitRecordMethods: true,
    wrapUnions: 'auto',
  };
}

export function parseSchema(raw: unknown): avro.Type {
  return avro.Type.forSchema(raw as Parameters<typeof avro.Type.forSchema>[0], avroTypeOptions());
}


export function defaultSchemaDir(): string {
  return path.join(projectRoot(), 'schemas');
}

/** `usage-event.v<N>.avsc` files of `dir`, ordered by N. Throws on unreadable or non-JSON files. */
export function readSchemaFiles(dir: string = defaultSchemaDir()): SchemaFile[] {
  const files: SchemaFile[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = FILE_RE.exec(name);
    if (!m) continue;
    const file = path.join(dir, name);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    files.push({ version: Number(m[1]), file, raw });
  }
  return files.sort((a, b) => a.version - b.version);
}

export function toSchemaVersion(file: SchemaFile): SchemaVersion {
  const type = parseSchema(file.raw);
  const fingerprint = schemaFingerprint(type);
  const aliases = VARIANT_STYLES.map((style) => ({ style, fingerprint: fingerprintIn(style, file.raw) })).filter(
    (a, i, all) => a.fingerprint !== fingerprint && all.findIndex((b) => b.fingerprint === a.fingerprint) === i,
  );
  return { ...file, type, canonical: canonicalForm(type), fingerprint, fingerprintLE: fingerprintBytes(fingerprint), aliases };
}

export interface SchemaCatalog {
  /** Ascending by version; at least one. */
  readonly versions: readonly SchemaVersion[];
  /** The writer schema of every encoder and the reader schema of every decoder. */
  readonly latest: SchemaVersion;
}

export function loadSchemaCatalog(dir: string = defaultSchemaDir()): SchemaCatalog {
  const versions = readSchemaFiles(dir).map(toSchemaVersion);
  const latest = versions[versions.length - 1];
  if (!latest) throw new Error(`no usage-event.v<N>.avsc schema in ${dir}`);
  return { versions, latest };
}

let shipped: SchemaCatalog | undefined;

/** The catalog of the project's own schemas/ directory, loaded once. */
export function usageEventSchemas(): SchemaCatalog {
  shipped ??= loadSchemaCatalog();
  return shipped;
}
