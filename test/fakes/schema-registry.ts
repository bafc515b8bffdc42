import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as avro from 'avsc';

/**
 * A fake Confluent Schema Registry on 127.0.0.1 with the real service's rules for what the
 * @kafkajs/confluent-schema-registry client calls: ids are global and a schema (whitespace
 * aside) keeps its id in every subject; re-registering returns the existing id; registering
 * checks compatibility (default BACKWARD, via avsc resolvers) and answers 409 if it fails;
 * errors are JSON `{error_code, message}` with Confluent codes.
 */
export interface FakeSchemaRegistry {
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: { method: string; path: string }[];
  /** While on, every request is answered 503 (a registry outage). */
  setUnavailable(on: boolean): void;
  close(): Promise<void>;
}

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';
const LEVELS = ['NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE'];

interface StoredSchema {
  readonly id: number;
  readonly schema: string;
  readonly schemaType: string;
  /** null for non-Avro schemas, which are stored but never checked. */
  readonly type: avro.Type | null;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

const subjectNotFound = (s: string) => new HttpError(404, 40401, `Subject '${s}' not found.`);
const versionNotFound = (v: string) => new HttpError(404, 40402, `Version ${v} not found.`);
const schemaNotFound = (what: string) => new HttpError(404, 40403, `Schema ${what} not found`);

export async function start(): Promise<FakeSchemaRegistry> {
  const byId = new Map<number, StoredSchema>();
  const idByKey = new Map<string, number>();
  const subjects = new Map<string, number[]>(); // subject -> schema ids, index = version - 1
  const subjectLevel = new Map<string, string>();
  let globalLevel = 'BACKWARD';
  let unavailable = false;
  const requests: { method: string; path: string }[] = [];

  function versionsOf(subject: string): number[] {
    const versions = subjects.get(subject);
    if (!versions || versions.length === 0) throw subjectNotFound(subject);
    return versions;
  }

  function versionIndex(subject: string, version: string): number {
    const versions = versionsOf(subject);
    if (version === 'latest' || version === '-1') return versions.length - 1;
    const n = Number(version);
    if (!Number.isInteger(n) || n < 1) throw new HttpError(422, 42202, `The specified version '${version}' is not a valid version id.`);
    if (n > versions.length) throw versionNotFound(version);
    return n - 1;
  }

  function parseBody(body: unknown): { schema: string; schemaType: string; type: avro.Type | null; key: string } {
    const b = body as { schema?: unknown; schemaType?: unknown };
    if (typeof b?.schema !== 'string') throw new HttpError(422, 42201, 'Invalid schema: missing "schema"');
    const schemaType = typeof b.schemaType === 'string' ? b.schemaType : 'AVRO';
    if (schemaType !== 'AVRO') return { schema: b.schema, schemaType, type: null, key: `${schemaType}:${b.schema}` };
    try {
      const json: unknown = JSON.parse(b.schema);
      const type = avro.Type.forSchema(json as Parameters<typeof avro.Type.forSchema>[0]);
      return { schema: b.schema, schemaType, type, key: `AVRO:${JSON.stringify(json)}` };
    } catch (err) {
      throw new HttpError(422, 42201, `Invalid schema ${b.schema}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** null when `next` may join `subject` under its compatibility level, else why not. */
  function incompatibility(subject: string, next: avro.Type): string | null {
    const level = subjectLevel.get(subject) ?? globalLevel;
    const history = (subjects.get(subject) ?? []).map((id) => byId.get(id)!.type).filter((t): t is avro.Type => t !== null);
    if (level === 'NONE' || history.length === 0) return null;
    const against = level.endsWith('_TRANSITIVE') ? history : history.slice(-1);
    const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
    const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
    for (const old of against) {
      try {
        if (backward) next.createResolver(old);
        if (forward) old.createResolver(next);
      } catch (err) {
        return err instanceof Error ? err.message : String(err);
      }
    }
    return null;
  }

  function register(subject: string, body: unknown): unknown {
    const parsed = parseBody(body);
    const versions = subjects.get(subject) ?? [];
    const existing = idByKey.get(parsed.key);
    if (existing !== undefined && versions.includes(existing)) return { id: existing };
    if (parsed.type) {
      const why = incompatibility(subject, parsed.type);
      if (why !== null) {
        throw new HttpError(409, 409, `Schema being registered is incompatible with an earlier schema for subject "${subject}", details: [${why}]`);
      }
    }
    let id = existing;
    if (id === undefined) {
      id = byId.size + 1;
      byId.set(id, { id, schema: parsed.schema, schemaType: parsed.schemaType, type: parsed.type });
      idByKey.set(parsed.key, id);
    }
    subjects.set(subject, [...versions, id]);
    return { id };
  }

  function describe(subject: string, index: number): Record<string, unknown> {
    const s = byId.get(subjects.get(subject)![index]!)!;
    return { subject, version: index + 1, id: s.id, ...(s.schemaType === 'AVRO' ? {} : { schemaType: s.schemaType }), schema: s.schema };
  }

  function setLevel(body: unknown): string {
    const level = (body as { compatibility?: unknown })?.compatibility;
    if (typeof level !== 'string' || !LEVELS.includes(level.toUpperCase())) {
      throw new HttpError(422, 42203, `Invalid compatibility level. Valid values are ${LEVELS.join(', ')}`);
    }
    return level.toUpperCase();
  }

  function route(method: string, parts: string[], query: URLSearchParams, body: unknown): unknown {
    const [root, a, b, c, d] = parts;
    if (root === 'schemas' && a === 'ids' && b !== undefined && parts.length === 3 && method === 'GET') {
      const s = byId.get(Number(b));
      if (!s) throw schemaNotFound(b);
      return s.schemaType === 'AVRO' ? { schema: s.schema } : { schemaType: s.schemaType, schema: s.schema };
    }
    if (root === 'schemas' && a === 'types' && parts.length === 2 && method === 'GET') return ['JSON', 'PROTOBUF', 'AVRO'];
    if (root === 'config' && parts.length === 1) {
      if (method === 'GET') return { compatibilityLevel: globalLevel };
      if (method === 'PUT') return { compatibility: (globalLevel = setLevel(body)) };
    }
    if (root === 'config' && a !== undefined && parts.length === 2) {
      if (method === 'GET') {
        const level = subjectLevel.get(a) ?? (query.get('defaultToGlobal') === 'true' ? globalLevel : undefined);
        if (!level) throw new HttpError(404, 40408, `Subject '${a}' does not have subject-level compatibility configured`);
        return { compatibilityLevel: level };
      }
      if (method === 'PUT') {
        const level = setLevel(body);
        subjectLevel.set(a, level);
        return { compatibility: level };
      }
    }
    if (root === 'subjects' && parts.length === 1 && method === 'GET') return [...subjects.keys()];
    if (root === 'subjects' && a !== undefined) {
      if (parts.length === 2 && method === 'POST') {
        const parsed = parseBody(body);
        const versions = versionsOf(a);
        const id = idByKey.get(parsed.key);
        const index = id === undefined ? -1 : versions.indexOf(id);
        if (index < 0) throw schemaNotFound('');
        return describe(a, index);
      }
      if (b === 'versions' && parts.length === 3) {
        if (method === 'GET') return versionsOf(a).map((_, i) => i + 1);
        if (method === 'POST') return register(a, body);
      }
      if (b === 'versions' && c !== undefined && parts.length === 4 && method === 'GET') return describe(a, versionIndex(a, c));
      if (b === 'versions' && c !== undefined && d === 'schema' && parts.length === 5 && method === 'GET') {
        return JSON.parse(describe(a, versionIndex(a, c)).schema as string);
      }
    }
    if (root === 'compatibility' && a === 'subjects' && b !== undefined && c === 'versions' && d !== undefined && method === 'POST') {
      const parsed = parseBody(body);
      const old = byId.get(versionsOf(b)[versionIndex(b, d)]!)!;
      if (!parsed.type || !old.type) return { is_compatible: true };
      try {
        parsed.type.createResolver(old.type);
        return { is_compatible: true };
      } catch {
        return { is_compatible: false };
      }
    }
    throw new HttpError(404, 404, 'HTTP 404 Not Found');
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const method = req.method ?? 'GET';
      requests.push({ method, path: url.pathname });
      const send = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': CONTENT_TYPE });
        res.end(JSON.stringify(payload));
      };
      if (unavailable) return send(503, { error_code: 50003, message: 'Schema registry is unavailable' });
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = text.length > 0 ? JSON.parse(text) : undefined;
        } catch {
          throw new HttpError(400, 400, 'Unexpected character in request body: not JSON');
        }
        const parts = url.pathname.split('/').filter((p) => p.length > 0).map(decodeURIComponent);
        send(200, route(method, parts, url.searchParams, body));
      } catch (err) {
        if (err instanceof HttpError) send(err.status, { error_code: err.errorCode, message: err.message });
        else send(500, { error_code: 50001, message: err instanceof Error ? err.message : String(err) });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setUnavailable(on) {
      unavailable = on;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Clients keep connections alive; close() alone would wait for them to idle out.
        server.closeAllConnections();
      }),
  };
}
