import type { ChildProcess } from 'node:child_process';
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
