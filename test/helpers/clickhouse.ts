import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../src/adapters/clickhouse/client';
import { migrate } from '../../src/adapters/clickhouse/migrations';
import { loadConfig, type Config } from '../../src/config/config';

/**
 * chdb allows one data directory per process, so every test in a jest process shares one
 * path and isolates itself with its own database.
 */
export const TEST_DATA_DIR = path.join(os.tmpdir(), `meterline-test-${process.pid}`);

let counter = 0;

export function uniqueDatabase(prefix: string): string {
  counter += 1;
  return `${prefix.replace(/[^A-Za-z0-9_]/g, '_')}_${process.pid}_${counter}_${Date.now() % 100000}`;
}

export interface TestClickHouse {
  readonly client: ClickHouseClient;
  readonly database: string;
  readonly config: Config;
  close(): Promise<void>;
}

export async function testClickHouse(prefix: string, env: NodeJS.ProcessEnv = {}): Promise<TestClickHouse> {
  const database = uniqueDatabase(prefix);
  const config = loadConfig({ METERLINE_DATA_DIR: TEST_DATA_DIR, CLICKHOUSE_DATABASE: database, LOG_LEVEL: 'silent', ...env });
  const client = createClickHouse(config);
  await migrate(client, database);
  return { client, database, config, close: () => client.close() };
}

/** Rows of a query, as plain objects (JSONEachRow). */
export async function rows<T = Record<string, unknown>>(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

export async function count(client: ClickHouseClient, query: string, params: Record<string, unknown> = {}): Promise<number> {
  const r = await rows<{ c: string | number }>(client, query, params);
  return Number(r[0]?.c ?? 0);
}
