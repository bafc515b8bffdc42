import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { PROJECT_ROOT } from './cli';

/**
 * Checks gateway responses against the shipped OpenAPI document (openapi/meterline.json): the
 * path, method and status must be documented, the media type must be the documented one and
 * the body must validate against its schema (JSON Schema 2020-12, as OpenAPI 3.1 says).
 * Undocumented paths (404s) must still answer with the document's Error schema.
 */
const DOC_ID = 'openapi.json';
export const OPENAPI = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'openapi', 'meterline.json'), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, { $ref?: string; content?: Record<string, unknown> }> }>>;
  components: { responses: Record<string, { content?: Record<string, unknown> }> };
};

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)));
ajv.addSchema(OPENAPI, DOC_ID);

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

export interface ReceivedResponse {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly contentType: string | null;
  readonly text: string;
}

export function assertMatchesOpenApi(r: ReceivedResponse): void {
  const where = `${r.method} ${r.path} → ${r.status}`;
  const op = OPENAPI.paths[r.path]?.[r.method.toLowerCase()];
  let schemaRef: string;
  let mediaType = 'application/json';
  if (!op) {
    schemaRef = `${DOC_ID}#/components/schemas/Error`;
  } else {
    let response = op.responses[String(r.status)];
    if (!response) throw new Error(`${where}: status ${r.status} is not documented (documented: ${Object.keys(op.responses).join(', ')})`);
    let base = `#/${pointer('paths', r.path, r.method.toLowerCase(), 'responses', String(r.status))}`;
    if (response.$ref) {
      base = response.$ref;
      response = OPENAPI.components.responses[response.$ref.split('/').pop()!]!;
    }
    const types = Object.keys(response.content ?? {});
    if (types.length === 0) {
      if (r.text !== '') throw new Error(`${where}: documented without a body, got ${r.text.slice(0, 200)}`);
      return;
    }
    mediaType = types[0]!;
    schemaRef = `${DOC_ID}${base}/content/${pointer(mediaType)}/schema`;
  }
  const got = (r.contentType ?? '').split(';')[0]!.trim();
  if (got !== mediaType) throw new Error(`${where}: content-type ${got || '(none)'}, documented ${mediaType}`);
  const body: unknown = mediaType === 'application/json' ? JSON.parse(r.text) : r.text;
  const validate = ajv.getSchema(schemaRef) ?? ajv.compile({ $ref: schemaRef });
  if (!validate(body)) throw new Error(`${where}: body does not match the OpenAPI document: ${ajv.errorsText(validate.errors)}\n${r.text.slice(0, 500)}`);
}

export interface ApiResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

/** fetch, then check the answer against the OpenAPI document; JSON bodies come back parsed. */
export async function api<T = any>(base: string, pathAndQuery: string, init: RequestInit = {}): Promise<ApiResponse<T>> {
  const res = await fetch(`${base}${pathAndQuery}`, init);
  const text = await res.text();
  const method = init.method ?? 'GET';
  const path = new URL(pathAndQuery, base).pathname;
  assertMatchesOpenApi({ method, path, status: res.status, contentType: res.headers.get('content-type'), text });
  const json = (res.headers.get('content-type') ?? '').startsWith('application/json');
  return { status: res.status, headers: res.headers, body: (json ? JSON.parse(text) : text) as T };
}
