import fs from 'node:fs';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Config } from '../../config/config';
import { seededRandom } from '../../domain/sample';
import { withClickHouseFaults } from './faulty-client';

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
export function createClickHouse(config: Pick<Config, 'clickhouse'> & Partial<Pick<Config, 'chaos'>>): ClickHouseClient {
  const client = connect(config.clickhouse);
  const faults = config.chaos?.clickhouseFaults;
  return faults ? withClickHouseFaults(client, faults, seededRandom(config.chaos!.seed + process.pid)) : client;
}

function connect(ch: Config['clickhouse']): ClickHouseClient {
  if (ch.url) {
    return createClient({
      url: ch.url,
      username: ch.username,
      password: ch.password ?? '',
      clickhouse_settings: { date_time_output_format: 'iso' },
    });
  }
  fs.mkdirSync(ch.embeddedPath, { recursive: true });
  // Loaded lazily: the chdb engine is a ~540 MB shared library that server mode never needs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createChdbConnection } = require('chdb/connection') as typeof import('chdb/connection');
  return createClient({
    connection: createChdbConnection({ path: ch.embeddedPath }),
    clickhouse_settings: { date_time_output_format: 'iso' },
  } as Parameters<typeof createClient>[0]);
}
