import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { requireChdb, resolveChdb } from '../../adapters/clickhouse/chdb-module';
import { BadRequest, httpStatusFor, parseEngineRequest, parseMultipart, preamble, type EngineRequest } from './request';

/**
 * A development ClickHouse server: the ClickHouse HTTP interface subset that @clickhouse/client
 * speaks, served by the embedded chdb engine, so several meterline processes can share one
 * engine (chdb binds one data directory per process). NOT FOR PRODUCTION: one query at a time,
 * results buffered in memory, no TLS, one user.
 *
 * Each request runs in a fresh engine session (settings and `USE` never leak between requests,
 * as with a sessionless server), strictly one after another in arrival order. Query parameters
 * go to the engine's own binder as the text the client sent. A request whose body did not
 * arrive whole is never run; one that did is run even if its client has gone (a server does
 * the same), and its response is dropped.
 */
export const DEV_CLICKHOUSE_WARNING =
  'meterline dev-clickhouse: a DEVELOPMENT ClickHouse server over the embedded engine (one query at a time, no TLS). NOT FOR PRODUCTION.';

/** ClickHouse's default http_max_uri_size: a client that works here works against a server. */
const MAX_URI_BYTES = 1024 * 1024;
const MAX_BODY_BYTES = 512 * 1024 * 1024;

export interface DevClickHouseOptions {
  /** The engine's data directory (embedded mode's path, so data moves freely between the two modes). */
  readonly dataPath: string;
  readonly host?: string;
  readonly port?: number;
  /** The one accepted user; password '' accepts an empty password only. */
  readonly username: string;
  readonly password: string;
  readonly log?: (level: 'info' | 'warn' | 'debug', msg: string, fields?: Record<string, unknown>) => void;
}

export interface DevClickHouse {
  readonly url: string;
  readonly port: number;
  /** Requests served so far (any outcome). */
  readonly served: () => number;
  close(): Promise<void>;
}

interface EngineResult {
  readonly bytes: Buffer;
  readonly elapsed: number;
  readonly rowsRead: number;
  readonly bytesRead: number;
}

interface Engine {
  run(sql: string, format: string, params: Record<string, string>): Promise<EngineResult>;
  close(): void;
}

/** chdb's session API, and its native binder for pre-formatted parameters (the text a server receives). */
function openEngine(dataPath: string): Engine {
  const chdb = requireChdb<{ Session: new (p: string) => { connection: unknown; close(): void } }>('chdb');
  const chdbDir = path.dirname(resolveChdb('chdb'));
  // The loader is a plain file of the package (not an export): the very addon chdb itself uses.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const native = (require(path.join(chdbDir, 'dist', 'loader.js')) as { loadNative(): NativeChdb }).loadNative();
  fs.mkdirSync(dataPath, { recursive: true });
  // Held for the server's lifetime: it binds the data directory to this process.
  const root = new chdb.Session(dataPath);
  return {
    async run(sql, format, params) {
      const session = new chdb.Session(dataPath);
      try {
        const raw = await native.QueryAsyncConnection(session.connection, sql, format, params);
        return { bytes: Buffer.from(raw.bytes.buffer, raw.bytes.byteOffset, raw.bytes.byteLength), elapsed: raw.elapsed, rowsRead: raw.rowsRead, bytesRead: raw.bytesRead };
      } finally {
        session.close();
      }
    },
    close: () => root.close(),
  };
}

interface NativeChdb {
  QueryAsyncConnection(
    connection: unknown,
    sql: string,
    format: string,
    params?: Record<string, string>,
  ): Promise<{ bytes: Uint8Array; elapsed: number; rowsRead: number; bytesRead: number }>;
}

/** An engine error as ClickHouse reports it: code, type and message. */
interface Failure {
  readonly code: number;
  readonly text: string;
}

function toFailure(err: unknown, version: string): Failure {
  if (err instanceof BadRequest) return { code: err.code, text: `Code: ${err.code}. DB::Exception: ${err.message}. (${err.type}) (version ${version})` };
  const message = err instanceof Error ? err.message : String(err);
  const m = /^Code: (\d+)\. /.exec(message);
  if (m) return { code: Number(m[1]), text: `${message.trimEnd()} (version ${version})` };
  // Not the engine's: say so in ClickHouse's shape, so the client still raises a ClickHouseError.
  return { code: 1001, text: `Code: 1001. DB::Exception: ${message.replace(/\s+/g, ' ')}. (STD_EXCEPTION) (version ${version})` };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function credentials(req: http.IncomingMessage, search: URLSearchParams): { user: string; password: string } {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? { user: decoded, password: '' } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  const user = req.headers['x-clickhouse-user'];
  const key = req.headers['x-clickhouse-key'];
  if (typeof user === 'string') return { user, password: typeof key === 'string' ? key : '' };
  return { user: search.get('user') ?? 'default', password: search.get('password') ?? '' };
}

function decodeBody(req: http.IncomingMessage, raw: Buffer): Buffer {
  switch ((req.headers['content-encoding'] ?? '').toLowerCase()) {
    case '':
    case 'identity':
      return raw;
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'deflate':
      return zlib.inflateSync(raw);
    case 'br':
      return zlib.brotliDecompressSync(raw);
    default:
      throw new BadRequest(1001, 'UNKNOWN_COMPRESSION_METHOD', 'Unsupported Content-Encoding');
  }
}

/** Reads the whole body; null if the client went away before it arrived whole. */
function readBody(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (v: Buffer | null) => {
      if (done) return;
      done = true;
      resolve(v);
    };
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        finish(null);
      } else chunks.push(c);
    });
    req.on('end', () => finish(Buffer.concat(chunks)));
    req.on('aborted', () => finish(null));
    req.on('error', () => finish(null));
    req.on('close', () => finish(req.complete ? Buffer.concat(chunks) : null));
  });
}

export async function startDevClickHouse(opts: DevClickHouseOptions): Promise<DevClickHouse> {
  const log = opts.log ?? (() => undefined);
  const engine = openEngine(opts.dataPath);
  const version = (await engine.run('SELECT version()', 'TabSeparated', {})).bytes.toString('utf8').trim();
  const expectedUser = digest(opts.username);
  const expectedPassword = digest(opts.password);
  let served = 0;
  // One query at a time, in arrival order: the tail of the chain is the last accepted request.
  let tail: Promise<unknown> = Promise.resolve();
  const serially = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };

  const send = (res: http.ServerResponse, status: number, headers: Record<string, string>, body: Buffer | string) => {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { 'X-ClickHouse-Server-Display-Name': 'meterline-dev-clickhouse', 'X-ClickHouse-Timezone': 'UTC', ...headers });
    res.end(body);
  };
  const fail = (res: http.ServerResponse, failure: Failure, queryId: string) =>
    send(
      res,
      httpStatusFor(failure.code),
      { 'Content-Type': 'text/plain; charset=UTF-8', 'X-ClickHouse-Exception-Code': String(failure.code), 'X-ClickHouse-Query-Id': queryId },
      `${failure.text}\n`,
    );

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    served += 1;
    res.on('error', () => undefined); // a client gone mid-response is its own business
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/ping' || (url.pathname === '/' && req.method === 'GET' && !url.searchParams.has('query'))) {
      send(res, 200, { 'Content-Type': 'text/plain; charset=UTF-8' }, 'Ok.\n');
      return;
    }
    const fallbackId = url.searchParams.get('query_id') || randomUUID();
    if (url.pathname !== '/') {
      send(res, 404, { 'Content-Type': 'text/plain; charset=UTF-8' }, 'There is no handle for this path.\n');
      return;
    }
    const { user, password } = credentials(req, url.searchParams);
    // Constant-time on digests: neither the lengths nor the contents leak through timing.
    const userOk = timingSafeEqual(digest(user), expectedUser);
    const passwordOk = timingSafeEqual(digest(password), expectedPassword);
    if (!(userOk && passwordOk)) {
      log('warn', 'refused a request: wrong user or password');
      fail(res, { code: 516, text: `Code: 516. DB::Exception: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version ${version})` }, fallbackId);
      return;
    }
    const raw = await readBody(req);
    if (raw === null) {
      log('debug', 'client went away before its request arrived whole: not run', { queryId: fallbackId });
      return;
    }
    let request: EngineRequest;
    try {
      const body = decodeBody(req, raw);
      const parts = parseMultipart(req.headers['content-type'], body);
      request = parseEngineRequest(url.searchParams, parts ? '' : body.toString('utf8'), parts ?? undefined);
    } catch (err) {
      fail(res, toFailure(err, version), fallbackId);
      return;
    }
    const queryId = request.queryId ?? fallbackId;
    if (request.emptyInsert) {
      send(res, 200, { 'X-ClickHouse-Query-Id': queryId, 'X-ClickHouse-Summary': summary(null) }, '');
      return;
    }
    try {
      const result = await serially(() => engine.run(`${preamble(request)}${request.sql}`, request.format, request.params));
      let body = result.bytes;
      const headers: Record<string, string> = {
        'Content-Type': 'text/plain; charset=UTF-8',
        'X-ClickHouse-Query-Id': queryId,
        'X-ClickHouse-Format': request.format,
        'X-ClickHouse-Summary': summary(result),
      };
      if (request.compressResponse && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
        body = zlib.gzipSync(body);
        headers['Content-Encoding'] = 'gzip';
      }
      send(res, 200, headers, body);
    } catch (err) {
      const failure = toFailure(err, version);
      log('debug', 'query failed', { queryId, code: failure.code });
      fail(res, failure, queryId);
    }
  };

  const server = http.createServer({ maxHeaderSize: MAX_URI_BYTES + 64 * 1024, requestTimeout: 0 }, (req, res) => {
    handle(req, res).catch((err) => {
      log('warn', 'request handler failed', { err: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) fail(res, toFailure(err, version), randomUUID());
    });
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8123, opts.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  log('warn', DEV_CLICKHOUSE_WARNING);
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    served: () => served,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await tail;
      engine.close();
    },
  };
}

function summary(r: EngineResult | null): string {
  const rows = String(r?.rowsRead ?? 0);
  const bytes = String(r?.bytesRead ?? 0);
  return JSON.stringify({
    read_rows: rows,
    read_bytes: bytes,
    written_rows: '0',
    written_bytes: '0',
    total_rows_to_read: '0',
    result_rows: rows,
    result_bytes: bytes,
    elapsed_ns: String(Math.round((r?.elapsed ?? 0) * 1e9)),
  });
}
