import fs from 'node:fs';
import path from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient, type Logger as ClientLogger } from '@clickhouse/client';
import type { Config } from '../../config/config';
import { seededRandom } from '../../domain/sample';
import type { Logger } from '../../runtime/logger';
import { readDevClickHouseState } from './dev-server-state';
import { withClickHouseFaults } from './faulty-client';
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
export function createClickHouse(config: Pick<Config, 'clickhouse' | 'dataDir'> & Partial<Pick<Config, 'chaos'>>, logger?: Logger): ClickHouseClient {
  const client = connect(config, logger);
  const faults = config.chaos?.clickhouseFaults;
  if (!faults) return client;
  const log = logger?.child({ module: 'chaos' });
  return withClickHouseFaults(client, faults, seededRandom(config.chaos!.seed + process.pid), (f) => log?.warn(f, 'CHAOS: injected ClickHouse fault'));
}

function connect(config: Pick<Config, 'clickhouse' | 'dataDir'>, logger: Logger | undefined): ClickHouseClient {
  const ch = config.clickhouse;
  // Two engines on one data directory corrupt it: without a URL, a running worker or dev server
  // that owns the embedded directory is reached over HTTP (e.g. `meterline stats` while
  // `meterline run` runs).
  const served = ch.url ? null : readDevClickHouseState(config.dataDir);
  const url = ch.url ?? (served && path.resolve(served.dataPath) === path.resolve(ch.embeddedPath) ? served.url : undefined);
  if (url) {
    return createClient({
      url,
      username: ch.username,
      password: ch.password ?? '',
      clickhouse_settings: { date_time_output_format: 'iso' },
      ...(logger ? { log: { LoggerClass: clientLogger(logger), level: ClickHouseLogLevel.WARN } } : {}),
    });
  }
  fs.mkdirSync(ch.embeddedPath, { recursive: true });
  // Loaded lazily: the chdb engine is a ~540 MB shared library that server mode never needs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createChdbConnection } = require('chdb/connection') as typeof import('chdb/connection');
  const connection = createChdbConnection({ path: ch.embeddedPath });
  const client = createClient({
    connection,
    clickhouse_settings: { date_time_output_format: 'iso' },
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
