import fs from 'node:fs';
import path from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type Logger as ClientLogger } from '@clickhouse/client';
import type { Config } from '../../config/config';
import { seededRandom } from '../../domain/sample';
import type { Logger } from '../../runtime/logger';
import { requireChdb } from './chdb-module';
import { DEV_CLICKHOUSE_STATE_FILE, readDevClickHouseState } from '../../dev/dev-clickhouse/state';
import { withClickHouseFaults } from '../../dev/faults/faulty-client';
import { registerRawTsvInsert } from './tsv-insert';

export type { ClickHouseClient };

/**
 * The one ClickHouse client factory. With CLICKHOUSE_URL it talks HTTP to a server; without
 * it, chdb (an in-process ClickHouse) plugs into the very same client as its connection, so
 * every query above this file is identical in both modes.
 *
 * Queries always name their database (`db.table`): chdb ignores the client's default database.
 * chdb allows one data directory per process: all embedded clients in a process share
 * `embeddedPath`, and tests separate themselves by database name, not by path.
 */
export function createClickHouse(
  config: Pick<Config, 'clickhouse' | 'dataDir'> & Partial<Pick<Config, 'chaos'>>,
  logger?: Logger,
  opts: { readOnly?: boolean } = {},
): ClickHouseClient {
  const client = connect(config, logger, opts.readOnly === true);
  const faults = config.chaos?.clickhouseFaults;
  if (!faults) return client;
  const log = logger?.child({ module: 'chaos' });
  return withClickHouseFaults(client, faults, seededRandom(config.chaos!.seed + process.pid), (f) => log?.warn(f, 'CHAOS: injected ClickHouse fault'));
}

/**
 * Where ClickHouse is and which setting says so: CLICKHOUSE_URL; else the process serving this
 * data directory's embedded engine (recorded in dev-clickhouse.json); else the engine in-process.
 */
export type ClickHouseAddress =
  | { readonly kind: 'server'; readonly url: string; readonly setting: 'CLICKHOUSE_URL' }
  | { readonly kind: 'served'; readonly url: string; readonly pid: number; readonly stateFile: string }
  | { readonly kind: 'embedded'; readonly path: string };

export function clickHouseAddress(config: Pick<Config, 'clickhouse' | 'dataDir'>): ClickHouseAddress {
  const ch = config.clickhouse;
  if (ch.url) return { kind: 'server', url: ch.url, setting: 'CLICKHOUSE_URL' };
  // Two engines on one data directory corrupt it: a running worker or dev server that owns the
  // embedded directory is reached over HTTP (e.g. `meterline stats` while `meterline run` runs).
  const served = readDevClickHouseState(config.dataDir);
  if (served && path.resolve(served.dataPath) === path.resolve(ch.embeddedPath)) {
    return { kind: 'served', url: served.url, pid: served.pid, stateFile: path.join(config.dataDir, DEV_CLICKHOUSE_STATE_FILE) };
  }
  return { kind: 'embedded', path: ch.embeddedPath };
}

const URL_SETTING_PREFIX = 'clickhouse_setting_';

function connect(config: Pick<Config, 'clickhouse' | 'dataDir'>, logger: Logger | undefined, readOnly: boolean): ClickHouseClient {
  const ch = config.clickhouse;
  // readonly=2: the engine refuses every write and DDL, and still lets a query choose its own
  // settings (some do, e.g. join_use_nulls). A user whose profile has readonly=2 may set it again.
  const clickhouse_settings: Record<string, string> = { date_time_output_format: 'iso', ...(readOnly ? { readonly: '2' } : {}) };
  const address = clickHouseAddress(config);
  if (address.kind !== 'embedded') {
    // Credentials and settings in the URL (`?clickhouse_setting_<name>=`) win, as in the client;
    // passed as options so the client has no reason to print a warning about overriding them.
    const url = new URL(address.url);
    const username = url.username ? decodeURIComponent(url.username) : ch.username;
    const password = url.username || url.password ? decodeURIComponent(url.password) : (ch.password ?? '');
    url.username = '';
    url.password = '';
    for (const [name, value] of [...url.searchParams]) {
      if (!name.startsWith(URL_SETTING_PREFIX)) continue;
      clickhouse_settings[name.slice(URL_SETTING_PREFIX.length)] = value;
      url.searchParams.delete(name);
    }
    return createClient({
      url: url.toString(),
      username,
      password,
      clickhouse_settings,
      // Without a logger the client's own console output stays off: failures reach the caller as errors.
      log: logger ? { LoggerClass: clientLogger(logger), level: ClickHouseLogLevel.WARN } : { level: ClickHouseLogLevel.OFF },
    });
  }
  fs.mkdirSync(ch.embeddedPath, { recursive: true });
  // Loaded lazily: the chdb engine is a ~540 MB optional peer that server mode never needs.
  const { createChdbConnection } = requireChdb<typeof import('chdb/connection')>('chdb/connection');
  const connection = createChdbConnection({ path: ch.embeddedPath });
  const client = createClient({
    connection,
    clickhouse_settings,
  } as Parameters<typeof createClient>[0]);
  // The ledger's rows go to the same session as bytes: chdb's raw insert parses them on a
  // libuv thread, where the client's insert would first turn them into one SQL string.
  registerRawTsvInsert(client, async (table, columns, tsv) => {
    await connection.chdb.rawInsert({ table, columns, values: tsv, format: 'TabSeparated' });
  });
  return client;
}

/** Routes the client's own log lines (plain text on the console by default) into our JSON logs. */
function clientLogger(logger: Logger): new () => ClientLogger {
  const log = logger.child({ module: 'clickhouse' });
  return class implements ClientLogger {
    trace(p: { message: string; args?: Record<string, unknown> }) {
      log.trace({ args: p.args }, p.message);
    }
    debug(p: { message: string; args?: Record<string, unknown> }) {
      log.debug({ args: p.args }, p.message);
    }
    info(p: { message: string; args?: Record<string, unknown> }) {
      log.info({ args: p.args }, p.message);
    }
    warn(p: { message: string; args?: Record<string, unknown>; err?: Error }) {
      log.warn({ args: p.args, err: p.err }, p.message);
    }
    error(p: { message: string; args?: Record<string, unknown>; err: Error }) {
      log.error({ args: p.args, err: p.err }, p.message);
    }
  };
}
