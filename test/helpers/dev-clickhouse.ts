import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../src/adapters/clickhouse/client';
import { migrate } from '../../src/adapters/clickhouse/migrations';
import { loadConfig } from '../../src/config/config';
import { spawnCli } from './cli';
import { exited } from './worker-process';

export interface TestDevClickHouse {
  readonly url: string;
  readonly process: ChildProcess;
  /** Everything the server wrote on stderr so far (its JSON logs). */
  readonly logs: () => string;
  /** SIGTERM, then waits for a clean exit (SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns `meterline dev-clickhouse --port 0` on `dataDir` and resolves with the URL it prints as
 * its first line of stdout. The test process must not open chdb on the same directory: it
 * talks to the server with CLICKHOUSE_URL like every other client.
 */
export function startDevClickHouse(dataDir: string, env: NodeJS.ProcessEnv = {}): Promise<TestDevClickHouse> {
  const child = spawnCli(['dev-clickhouse', '--port', '0'], { env: { METERLINE_DATA_DIR: dataDir, LOG_LEVEL: 'info', ...env } });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`dev-clickhouse printed no URL within 60 s:\n${stderr}`));
    }, 60_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`dev-clickhouse exited (${code ?? signal}) before printing its URL:\n${stderr}`));
    });
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const nl = stdout.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      resolve({
        url: stdout.slice(0, nl).trim(),
        process: child,
        logs: () => stderr,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          const r = await exited(child);
          clearTimeout(killer);
          return r;
        },
      });
    });
  });
}

/**
 * `database`, migrated, on a dev-clickhouse server over a temporary directory, and a client that
 * talks to it over HTTP as a deployment would. `close()` closes the client, stops the server and
 * removes the directory.
 */
export async function devClickHouseDatabase(database: string): Promise<{ client: ClickHouseClient; server: TestDevClickHouse; close(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-dev-ch-'));
  const server = await startDevClickHouse(dir);
  const client = createClickHouse(loadConfig({ METERLINE_DATA_DIR: dir, CLICKHOUSE_URL: server.url, CLICKHOUSE_DATABASE: database, LOG_LEVEL: 'silent' }));
  await migrate(client, database);
  return {
    client,
    server,
    async close() {
      await client.close();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
