import { MeterlineError } from '../../runtime/errors';

/**
 * The embedded ClickHouse engine (the `chdb` package, a ~540 MB shared library) is an optional
 * peer dependency: a user who only publishes, or who runs against a ClickHouse server
 * (`CLICKHOUSE_URL`), never installs it. It is required here, lazily, only in embedded mode.
 */
export const CHDB_MISSING_MESSAGE = 'embedded ClickHouse needs the chdb package: npm install chdb, or set CLICKHOUSE_URL to use a ClickHouse server';

/** `require(specifier)` for `chdb` or one of its files; a clear MeterlineError when chdb is not installed. */
export function requireChdb<T>(specifier: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(specifier) as T;
  } catch (err) {
    if (isChdbMissing(err)) throw new MeterlineError('chdb_missing', CHDB_MISSING_MESSAGE, { cause: err });
    throw err;
  }
}

/** chdb's own directory, for its loader file; the same clear error when it is not installed. */
export function resolveChdb(specifier: string): string {
  try {
    return require.resolve(specifier);
  } catch (err) {
    if (isChdbMissing(err)) throw new MeterlineError('chdb_missing', CHDB_MISSING_MESSAGE, { cause: err });
    throw err;
  }
}

/** Only "chdb itself cannot be found": a chdb that is installed but broken keeps its own error. */
function isChdbMissing(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown };
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && /Cannot find module '(chdb)(\/[^']*)?'/.test(e.message);
}
