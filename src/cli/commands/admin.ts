import type { Command } from 'commander';
import { migrate } from '../../adapters/clickhouse/migrations';
import { runSchemasCheck } from '../../adapters/avro/compatibility';
import { redactConfig } from '../../config/config';
import { configWarnings, describeStripeRateLimit } from '../../config/warnings';
import { generateEvents, toNdjsonLine } from '../../domain/sample';
import { writeLines } from '../write-output';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { withExamples } from '../help';

export function registerAdmin(program: Command): void {
  const migrateCommand = program
    .command('migrate')
    .description('create every ClickHouse table (idempotent: safe to run any number of times)')
    .action(async () => {
      const { config, logger } = createContext();
      const ch = await openClickHouse(config);
      try {
        const applied = await migrate(ch, config.clickhouse.database);
        logger.info({ database: config.clickhouse.database, statements: applied.length }, 'schema is up to date');
        process.stdout.write(`migrated ${config.clickhouse.database}: ${applied.join(', ')}\n`);
      } finally {
        await ch.close();
      }
    });
  withExamples(migrateCommand, [
    ['create the tables in the embedded engine (under METERLINE_DATA_DIR)', 'meterline migrate'],
    ['in a ClickHouse server, as a user allowed to create tables', 'CLICKHOUSE_URL=https://ch.internal:8443 CLICKHOUSE_USER=admin CLICKHOUSE_PASSWORD=… meterline migrate'],
  ]);

  const schemas = program.command('schemas').description('Avro schema tools');
  const check = schemas
    .command('check')
    .description('prove each schema version reads data written by every older one')
    .option('--dir <dir>', 'schema directory', 'schemas')
    .action((opts: { dir: string }) => {
      const result = runSchemasCheck(opts.dir);
      for (const line of result.lines) process.stdout.write(line + '\n');
      process.exitCode = result.ok ? 0 : 1;
    });
  withExamples(check, [['prove the schemas in schemas/ compatible (exit code 1 otherwise)', 'meterline schemas check'], ['another directory', 'meterline schemas check --dir ./my-schemas']]);

  const configCommand = program
    .command('config')
    .description('print the effective configuration (secrets redacted)')
    .action(() => {
      const { config } = createContext();
      process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      if (config.stripe.apiKey) process.stderr.write(`${describeStripeRateLimit(config)}\n`);
      for (const w of configWarnings(config)) process.stderr.write(`warning: ${w}\n`);
    });
  withExamples(configCommand, [
    ['what the current environment configures', 'meterline config'],
    ['check a configuration before deploying it (exit code 2 names every problem)', 'KAFKA_BROKERS=kafka-1:9092 DEDUPE_WINDOW_DAYS=40 meterline config'],
  ]);

  const sample = program
    .command('sample')
    .description('print sample usage events as NDJSON (for demos and tests)')
    .option('-n, --count <n>', 'number of events', '1000')
    .option('--seed <n>', 'random seed', '1')
    .option('--duplicates <rate>', 'fraction of exact copies', '0')
    .action(async (opts: { count: string; seed: string; duplicates: string }) => {
      const events = generateEvents({ count: Number(opts.count), seed: Number(opts.seed), duplicateRate: Number(opts.duplicates) });
      await writeLines(process.stdout, (function* lines() {
        for (const e of events) yield toNdjsonLine(e);
      })());
    });
  withExamples(sample, [
    ['ten sample events on standard output', 'meterline sample -n 10'],
    ['publish 1000 events, 10 % of them exact copies', 'meterline sample -n 1000 --duplicates 0.1 | meterline publish'],
  ]);
}
