import type { Command } from 'commander';
import { createClickHouse } from '../../adapters/clickhouse/client';
import { migrate } from '../../adapters/clickhouse/migrations';
import { runSchemasCheck } from '../../adapters/avro/compatibility';
import { redactConfig } from '../../config/config';
import { configWarnings, describeStripeRateLimit } from '../../config/warnings';
import { generateEvents, toNdjsonLine } from '../../domain/sample';
import { writeLines } from '../write-output';
import { createContext } from '../context';

export function registerAdmin(program: Command): void {
  program
    .command('migrate')
    .description('create every ClickHouse table (idempotent: safe to run any number of times)')
    .action(async () => {
      const { config, logger } = createContext();
      const ch = createClickHouse(config);
      try {
        const applied = await migrate(ch, config.clickhouse.database);
        logger.info({ database: config.clickhouse.database, statements: applied.length }, 'schema is up to date');
        process.stdout.write(`migrated ${config.clickhouse.database}: ${applied.join(', ')}\n`);
      } finally {
        await ch.close();
      }
    });

  const schemas = program.command('schemas').description('Avro schema tools');
  schemas
    .command('check')
    .description('prove each schema version reads data written by every older one')
    .option('--dir <dir>', 'schema directory', 'schemas')
    .action((opts: { dir: string }) => {
      const result = runSchemasCheck(opts.dir);
      for (const line of result.lines) process.stdout.write(line + '\n');
      process.exitCode = result.ok ? 0 : 1;
    });

  program
    .command('config')
    .description('print the effective configuration (secrets redacted)')
    .action(() => {
      const { config } = createContext();
      process.stdout.write(JSON.stringify(redactConfig(config), null, 2) + '\n');
      if (config.stripe.apiKey) process.stderr.write(`${describeStripeRateLimit(config)}\n`);
      for (const w of configWarnings(config)) process.stderr.write(`warning: ${w}\n`);
    });

  program
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
}
