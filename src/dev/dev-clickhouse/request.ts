/**
 * The part of the ClickHouse HTTP interface that @clickhouse/client (1.23) speaks, read into
 * one statement for the engine. Pure: no I/O, tested without a server.
 *
 * Like ClickHouse: the SQL is the `query` URL parameter followed by the body (an INSERT's rows),
 * or the body alone; `param_<name>` are query parameters, handed to the engine's own binder as
 * the text the client sent (never substituted into the SQL here); `database`, `default_format`
 * and `query_id` are request options; every other URL parameter is a setting.
 */
export interface EngineRequest {
  /** The statement, with its data for an INSERT. */
  readonly sql: string;
  /** `param_<name>` values, exactly as received: the engine parses them for their declared types. */
  readonly params: Readonly<Record<string, string>>;
  readonly settings: Readonly<Record<string, string>>;
  readonly database: string | undefined;
  /** Output format when the statement names none (ClickHouse's HTTP default: TabSeparated). */
  readonly format: string;
  readonly queryId: string | undefined;
  /** Whether the gzip-compressed response the client asked for (enable_http_compression=1) may be sent. */
  readonly compressResponse: boolean;
  /** An INSERT with no rows in its body: a no-op, as on a server. */
  readonly emptyInsert: boolean;
}

/** A request ClickHouse would refuse before running anything, with the code it would use. */
export class BadRequest extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** Request options that are not settings (ClickHouse's HTTP handler reads these itself). */
const REQUEST_OPTIONS = new Set([
  'query',
  'database',
  'default_format',
  'query_id',
  'user',
  'password',
  'quota_key',
  'session_id',
  'session_timeout',
  'session_check',
  'role',
  'compress',
  'decompress',
  'buffer_size',
  'wait_end_of_query',
  'stacktrace',
]);

/**
 * Settings of the HTTP layer itself: meaningless to an embedded engine, which would reject
 * some of them as unknown. `enable_http_compression` is honoured by the server, not the engine.
 */
const HTTP_ONLY_SETTINGS = new Set([
  'enable_http_compression',
  'send_progress_in_http_headers',
  'http_response_buffer_size',
  'http_headers_progress_interval_ms',
  'http_send_progress_interval_ms',
  'http_zlib_compression_level',
  'http_response_compression_method',
  'http_native_compression_disable_checksumming_on_decompress',
  'http_wait_end_of_query',
  'cancel_http_readonly_queries_on_client_close',
]);

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FORMAT_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/** Reads a request. `body` is the decoded body (multipart already split into `parts`). */
export function parseEngineRequest(search: URLSearchParams, body: string, parts?: ReadonlyMap<string, string>): EngineRequest {
  const get = (name: string) => parts?.get(name) ?? search.get(name) ?? undefined;
  const urlQuery = get('query');
  // With multipart params the query travels as a part; the body is then not SQL.
  const sql = parts ? (urlQuery ?? '') : urlQuery === undefined ? body : body.length > 0 ? `${urlQuery}\n${body}` : urlQuery;
  if (sql.trim() === '') throw new BadRequest(62, 'SYNTAX_ERROR', 'Empty query');
  const params: Record<string, string> = {};
  const settings: Record<string, string> = {};
  const entries: [string, string][] = [...search.entries(), ...(parts ? [...parts.entries()] : [])];
  for (const [name, value] of entries) {
    if (name.startsWith('param_')) {
      params[name.slice('param_'.length)] = value;
      continue;
    }
    if (REQUEST_OPTIONS.has(name) || HTTP_ONLY_SETTINGS.has(name)) continue;
    if (!IDENTIFIER.test(name)) throw new BadRequest(115, 'UNKNOWN_SETTING', `Unknown setting ${JSON.stringify(name)}`);
    settings[name] = value;
  }
  const database = get('database');
  if (database !== undefined && database !== '' && !IDENTIFIER.test(database)) {
    throw new BadRequest(81, 'UNKNOWN_DATABASE', 'Database name is not an identifier');
  }
  const format = get('default_format') ?? 'TabSeparated';
  if (!FORMAT_NAME.test(format)) throw new BadRequest(73, 'UNKNOWN_FORMAT', 'Unknown format');
  return {
    sql,
    params,
    settings,
    database: database || undefined,
    format,
    queryId: get('query_id') || undefined,
    compressResponse: get('enable_http_compression') === '1',
    emptyInsert: urlQuery !== undefined && /^\s*INSERT\b/i.test(urlQuery) && body.trim() === '' && !parts,
  };
}

/**
 * A ClickHouse string literal: backslash and quote escaped, as ClickHouse's own
 * `quoteString` does, so a setting's value can never end the literal.
 */
export function quoteString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** The statements that put a request's settings and database in force for it alone (a fresh session each request). */
export function preamble(req: Pick<EngineRequest, 'settings' | 'database'>): string {
  const stmts = Object.entries(req.settings).map(([k, v]) => `SET ${k} = ${quoteString(v)}`);
  if (req.database !== undefined && req.database !== 'default') stmts.push(`USE \`${req.database}\``);
  return stmts.map((s) => `${s};\n`).join('');
}

/**
 * multipart/form-data as @clickhouse/client builds it (use_multipart_params): named parts, no
 * files. Returns null when the content type is not multipart.
 */
export function parseMultipart(contentType: string | undefined, body: Buffer): Map<string, string> | null {
  const m = /^multipart\/form-data;\s*boundary="?([^";]+)"?/i.exec(contentType ?? '');
  if (!m) return null;
  const delimiter = `--${m[1]}`;
  const text = body.toString('utf8');
  const parts = new Map<string, string>();
  for (const chunk of text.split(delimiter).slice(1)) {
    if (chunk.startsWith('--')) break;
    const headerEnd = chunk.indexOf('\r\n\r\n');
    if (headerEnd < 0) throw new BadRequest(27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', 'Malformed multipart body');
    const name = /name="([^"]*)"/.exec(chunk.slice(0, headerEnd))?.[1];
    if (name === undefined) throw new BadRequest(27, 'CANNOT_PARSE_INPUT_ASSERTION_FAILED', 'Multipart part without a name');
    // Each part ends with CRLF before the next delimiter.
    parts.set(name, chunk.slice(headerEnd + 4).replace(/\r\n$/, ''));
  }
  return parts;
}

/** ClickHouse's HTTP status for an exception code (HTTPHandler's exceptionCodeToHTTPStatus, the common cases). */
export function httpStatusFor(code: number): number {
  switch (code) {
    case 192: // UNKNOWN_USER
    case 193: // WRONG_PASSWORD
    case 194: // REQUIRED_PASSWORD
    case 516: // AUTHENTICATION_FAILED
      return 401;
    case 497: // ACCESS_DENIED
    case 164: // READONLY
      return 403;
    case 6: // CANNOT_PARSE_TEXT
    case 26: // CANNOT_PARSE_QUOTED_STRING
    case 27: // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    case 38: // CANNOT_PARSE_DATE
    case 41: // CANNOT_PARSE_DATETIME
    case 62: // SYNTAX_ERROR
    case 72: // CANNOT_PARSE_NUMBER
    case 115: // UNKNOWN_SETTING
    case 117: // INCORRECT_DATA
    case 456: // UNKNOWN_QUERY_PARAMETER
    case 457: // BAD_QUERY_PARAMETER
      return 400;
    case 16: // NO_SUCH_COLUMN_IN_TABLE
    case 46: // UNKNOWN_FUNCTION
    case 47: // UNKNOWN_IDENTIFIER
    case 60: // UNKNOWN_TABLE
    case 73: // UNKNOWN_FORMAT
    case 81: // UNKNOWN_DATABASE
      return 404;
    default:
      return 500;
  }
}
