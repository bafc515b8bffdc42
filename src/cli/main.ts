import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/config';
import { MeterlineError, errorMessage } from '../runtime/errors';
import { redactSecrets, secretsInEnv } from '../runtime/redact';
import { registerAdmin } from './commands/admin';
import { registerDevBroker } from './commands/dev-broker';
import { registerDevClickHouse } from './commands/dev-clickhouse';
import { registerGateway } from './commands/gateway';
import { registerKeys } from './commands/keys';
import { registerLedgerCommands } from './commands/ledger';
import { registerPublish } from './commands/publish';
import { registerPushes } from './commands/pushes';
import { registerQuery } from './commands/query';
import { registerReconcile } from './commands/reconcile';
import { registerBackfill } from './commands/backfill';
import { registerRebuild } from './commands/rebuild';
import { registerReplay } from './commands/replay';
import { registerRun } from './commands/run';
import { registerStats } from './commands/stats';
import { markRequiredOptions, withExamples } from './help';

// The package's own version (dist/cli/main.js and src/cli/main.ts are both two levels below it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('meterline')
    .description('usage metering: Kafka → dedupe/enrich → ClickHouse → windowed counters → Stripe, exactly once')
    .version(version, '-V, --version', 'print the meterline version')
    .exitOverride();
  registerRun(program);
  registerPublish(program);
  registerDevBroker(program);
  registerDevClickHouse(program);
  registerQuery(program);
  registerReconcile(program);
  registerPushes(program);
  registerReplay(program);
  registerBackfill(program);
  registerRebuild(program);
  registerLedgerCommands(program);
  registerStats(program);
  registerGateway(program);
  registerKeys(program);
  registerAdmin(program);
  markRequiredOptions(program);
  withExamples(program, [
    ['the worker on embedded defaults (dev broker, embedded ClickHouse, Stripe shadow mode)', 'meterline run'],
    ['in another terminal: publish sample events, then see where every message went', 'meterline sample -n 1000 --duplicates 0.1 | meterline publish\n  $ meterline stats --by-customer'],
    ["a command's options and examples", 'meterline query --help'],
  ]);
  return program;
}

/** Runs the CLI; resolves with the exit code. Errors are printed once, without stack noise. */
export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    // Library errors may quote what they were given (Stripe quotes the key): scrub before printing.
    const message = redactSecrets(errorMessage(err), secretsInEnv(process.env));
    process.stderr.write(`meterline: ${message}\n`);
    return err instanceof ConfigError || err instanceof MeterlineError ? 2 : 1;
  }
}

