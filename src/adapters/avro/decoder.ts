import type { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import * as avro from 'avsc';
import { MeterlineError, errorMessage } from '../../runtime/errors';
import { MalformedBody, compileBodyCheck, type BodyCheck } from './body-check';
import type { DecodeFailureCode, Decoded, Encoding, EventDecoder } from './codec';
import { fingerprintBytes, formatFingerprint, schemaFingerprint } from './fingerprint';
import { classifyRegistryError } from './registry-errors';
import { parseSchema, usageEventSchemas, type SchemaCatalog } from './schemas';

export interface DecoderOptions {
  /** Needed only for Confluent-framed messages. */
  readonly registry?: SchemaRegistry;
  /** Defaults to the project's schemas/ directory. */
  readonly catalog?: SchemaCatalog;
}

/** How to read one writer schema into the latest (reader) schema. */
interface Writer {
  /** The local schema version with the same canonical form, if any. */
  readonly version: number | null;
  readonly check: BodyCheck;
  readonly resolver: avro.Resolver;
}

interface LocalWriter {
  readonly fingerprint: bigint;
  /** The fingerprint's little-endian 32-bit halves, for comparing against raw headers. */
  readonly lo: number;
  readonly hi: number;
  readonly writer: Writer;
}

/** Registry ids are immutable, so both outcomes are cached for good. 404s are not cached. */
type RegistryEntry = { ok: true; writer: Writer } | { ok: false; reason: string };

const NO_MISSES: ReadonlyMap<number, string> = new Map();

export function createDecoder(opts: DecoderOptions = {}): EventDecoder {
  const catalog = opts.catalog ?? usageEventSchemas();
  const reader = catalog.latest.type;
  const registry = opts.registry;
  const latestVersion = catalog.latest.version;
  const locals: LocalWriter[] = catalog.versions.map((v) => localWriter(v.fingerprint, { version: v.version, check: compileBodyCheck(v.type), resolver: reader.createResolver(v.type) }));
  // Other libraries' fingerprints of the same schema read with the very same writer.
  const aliases: LocalWriter[] = catalog.versions.flatMap((v, i) => v.aliases.map((a) => localWriter(a.fingerprint, locals[i]!.writer)));
  const singleObjectWriters = [...locals, ...aliases];
  const knownFingerprints = describeKnownFingerprints(catalog);
  const byId = new Map<number, RegistryEntry>();

  function fromRegistry(id: number, schema: unknown): RegistryEntry {
    if (!avro.Type.isType(schema)) return { ok: false, reason: `schema id ${id} is not an Avro schema` };
    const type = schema as avro.Type;
    // Canonical form drops logical types: a match means same layout; the local type then
    // supplies the decimal annotation that a registry client without our options loses.
    const fingerprint = schemaFingerprint(type);
    const local = locals.find((l) => l.fingerprint === fingerprint);
    if (local) return { ok: true, writer: local.writer };
    try {
      const writer = parseSchema(type.schema({ exportAttrs: true }));
      return { ok: true, writer: { version: null, check: compileBodyCheck(writer), resolver: reader.createResolver(writer) } };
    } catch (err) {
      return { ok: false, reason: `schema id ${id} cannot be read as schema v${latestVersion}: ${errorMessage(err)}` };
    }
  }

  /** Fetches every registry id of the batch not yet known, each once; returns the 404s. */
  async function fetchUnknownIds(buffers: (Buffer | null)[]): Promise<ReadonlyMap<number, string>> {
    if (!registry) return NO_MISSES;
    let unknown: Set<number> | undefined;
    for (const buf of buffers) {
      if (buf && buf.length >= 5 && buf[0] === 0) {
        const id = buf.readInt32BE(1);
        if (id > 0 && !byId.has(id)) (unknown ??= new Set()).add(id);
      }
    }
    if (!unknown) return NO_MISSES;
    const missing = new Map<number, string>();
    await Promise.all(
      [...unknown].map(async (id) => {
        try {
          byId.set(id, fromRegistry(id, await registry.getSchema(id)));
        } catch (err) {
          const kind = classifyRegistryError(err);
          if (kind === 'not_found') missing.set(id, `schema id ${id} is not in the schema registry`);
          else if (kind === 'rejected') byId.set(id, { ok: false, reason: `schema id ${id} is unusable: ${errorMessage(err)}` });
          else {
            throw new MeterlineError('registry_unavailable', `schema registry lookup of schema id ${id} failed: ${errorMessage(err)}`, {
              retriable: true,
              cause: err,
            });
          }
        }
      }),
    );
    return missing;
  }

  function decodeBody(writer: Writer, buf: Buffer, start: number, encoding: Encoding, schemaId?: number): Decoded {
    let end: number;
    try {
      end = writer.check(buf, start);
    } catch (err) {
      if (err instanceof MalformedBody) return fail('malformed_avro', `${err.message} (at byte ${err.at})`);
      return fail('malformed_avro', errorMessage(err));
    }
    if (end !== buf.length) return fail('malformed_avro', `${buf.length - end} trailing bytes after the record`);
    let record: Record<string, unknown>;
    try {
      record = reader.decode(buf, start, writer.resolver).value as Record<string, unknown>;
    } catch (err) {
      return fail('malformed_avro', errorMessage(err));
    }
    return schemaId === undefined
      ? { ok: true, record, encoding, writerSchemaVersion: writer.version }
      : { ok: true, record, encoding, writerSchemaVersion: writer.version, schemaId };
  }

  function decodeOne(buf: Buffer | null, missing: ReadonlyMap<number, string>): Decoded {
    if (buf === null || buf.length === 0) return fail('empty', buf === null ? 'message has no value' : 'message value is empty');
    if (buf[0] === 0xc3 && buf[1] === 0x01) {
      if (buf.length < 10) return fail('malformed_avro', `single-object header needs 10 bytes, message has ${buf.length}`);
      const lo = buf.readUInt32LE(2);
      const hi = buf.readUInt32LE(6);
      for (const l of singleObjectWriters) if (l.lo === lo && l.hi === hi) return decodeBody(l.writer, buf, 10, 'single-object');
      return fail('unknown_schema', `no known schema has fingerprint ${formatFingerprint(buf.readBigUInt64LE(2))}; known: ${knownFingerprints}`);
    }
    if (buf[0] === 0x00) {
      if (buf.length < 5) return fail('malformed_avro', `Confluent header needs 5 bytes, message has ${buf.length}`);
      const id = buf.readInt32BE(1);
      const entry = byId.get(id);
      if (entry?.ok) return decodeBody(entry.writer, buf, 5, 'confluent', id);
      if (entry) return fail('unknown_schema', entry.reason);
      if (id <= 0) return fail('unknown_schema', `schema id ${id} is not a valid registry id`);
      if (!registry) return fail('unknown_schema', `Confluent-framed message (schema id ${id}) but no schema registry is configured`);
      return fail('unknown_schema', missing.get(id) ?? `schema id ${id} is not in the schema registry`);
    }
    const head = buf.subarray(0, 2).toString('hex');
    return fail('bad_magic', `message starts with 0x${head}: neither Avro single-object (c301) nor Confluent (00) framing`);
  }

  const decodeEach: EventDecoder['decodeEach'] = async (buffers, visit) => {
    const missing = await fetchUnknownIds(buffers);
    for (let i = 0; i < buffers.length; i += 1) visit(decodeOne(buffers[i]!, missing), i);
  };

  return {
    async decodeMany(buffers) {
      const out: Decoded[] = [];
      await decodeEach(buffers, (d) => out.push(d));
      return out;
    },
    decodeEach,
  };
}

function localWriter(fingerprint: bigint, writer: Writer): LocalWriter {
  const le = fingerprintBytes(fingerprint);
  return { fingerprint, lo: le.readUInt32LE(0), hi: le.readUInt32LE(4), writer };
}

/** e.g. "v1 0x… (aliases 0x… python-avro, 0x… rust-apache-avro), v2 0x… (…)" */
export function describeKnownFingerprints(catalog: SchemaCatalog): string {
  return catalog.versions
    .map((v) => {
      const aliases = v.aliases.map((a) => `${formatFingerprint(a.fingerprint)} ${a.style}`).join(', ');
      return `v${v.version} ${formatFingerprint(v.fingerprint)}${aliases ? ` (aliases ${aliases})` : ''}`;
    })
    .join(', ');
}

function fail(code: DecodeFailureCode, reason: string): Decoded {
  return { ok: false, code, reason };
}
