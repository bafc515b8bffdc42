import type { Command } from 'commander';
import { startDevClickHouse } from '../../dev/dev-clickhouse/server';
import { clearDevClickHouseState, readDevClickHouseState, writeDevClickHouseState } from '../../dev/dev-clickhouse/state';
import { MeterlineError } from '../../runtime/errors';
import { createContext, waitForShutdownSignal } from '../context';
import { withExamples } from '../help';

export function registerDevClickHouse(program: Command): void {
  const command = program
    .command('dev-clickhouse')
    .description('serve the embedded ClickHouse data over HTTP so several processes share it (NOT for production) until interrupted')
    .option('--port <n>', 'port to listen on (0: any free port)', '8123')
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .action(async (opts: { port: string; host: string }) => {
      const { config, logger } = createContext();
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MeterlineError('USAGE', `--port must be 0-65535, got ${opts.port}`);
      const existing = readDevClickHouseState(config.dataDir);
      if (existing) throw new MeterlineError('DEV_CLICKHOUSE_RUNNING', `a dev ClickHouse server already serves ${existing.dataPath} (pid ${existing.pid}) at ${existing.url}`);
      const log = logger.child({ module: 'dev-clickhouse' });
      const server = await startDevClickHouse({
        dataPath: config.clickhouse.embeddedPath,
        host: opts.host,
        port,
        username: config.clickhouse.username,
        password: config.clickhouse.password ?? '',
        log: (level, msg, fields) => log[level](fields ?? {}, msg),
      });
      writeDevClickHouseState(config.dataDir, { url: server.url, pid: process.pid, dataPath: config.clickhouse.embeddedPath, startedAt: new Date().toISOString() });
      // The first line of stdout is the URL: scripts and tests read it (with --port 0 especially).
      process.stdout.write(`${server.url}\n`);
      log.info({ url: server.url, dataPath: config.clickhouse.embeddedPath }, `dev ClickHouse server listening; use CLICKHOUSE_URL=${server.url}`);
      await waitForShutdownSignal();
      clearDevClickHouseState(config.dataDir);
      await server.close();
      log.info({ served: server.served() }, 'dev ClickHouse server stopped');
    });
  withExamples(command, [
    ['share the embedded data with two workers', 'meterline dev-clickhouse --port 8123 &\n  $ CLICKHOUSE_URL=http://127.0.0.1:8123 meterline run --no-demo'],
    ['any free port (the URL is the first line printed)', 'meterline dev-clickhouse --port 0'],
  ]);
}
