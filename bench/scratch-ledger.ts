import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClickHouse, type ClickHouseClient } from '../src/adapters/clickhouse/client';
import { migrate } from '../src/adapters/clickhouse/migrations';
import { loadConfig, type Config } from '../src/config/config';

/**
 * Runs `measure` against a fresh embedded ledger (the real migrations) in a temporary data
 * directory of its own, then closes the engine and removes the directory, whatever happened.
 */
export async function withScratchLedger<T>(name: string, measure: (l: { ch: ClickHouseClient; db: string; config: Config }) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `meterline-${name}-`));
  const config = loadConfig({ METERLINE_DATA_DIR: dir, LOG_LEVEL: 'silent' });
  const ch = createClickHouse(config);
  const db = config.clickhouse.database;
  try {
    await migrate(ch, db);
    return await measure({ ch, db, config });
  } finally {
    await ch.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
