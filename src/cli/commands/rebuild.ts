import type { Command } from 'commander';
import { migrate } from '../../adapters/clickhouse/migrations';
import { rebuildCounters } from '../../pipeline/rebuild';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { withExamples } from '../help';
import { isoTime } from './query';

export function registerRebuild(program: Command): void {
  const command = program
    .command('rebuild')
    .description('have the pusher re-plan every stream with windows starting in [--from, --to) from the ledger (counters are computed from it where read); it sends only the differences')
    .option('--from <iso>', 'windows starting at or after this time (default: the beginning)')
    .option('--to <iso>', 'windows starting before this time (default: now + 1 day)')
    .action(async (opts: { from?: string; to?: string }) => {
      const from = opts.from ? isoTime('from', opts.from) : 0;
      const to = opts.to ? isoTime('to', opts.to) : Date.now() + 86_400_000;
      if (from >= to) throw new MeterlineError('bad_argument', '--from must be before --to');
      const { config } = createContext();
      const ch = await openClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const summary = await rebuildCounters(ch, config.clickhouse.database, { from, to, now: Date.now() });
        process.stdout.write(JSON.stringify(summary) + '\n');
      } finally {
        await ch.close();
      }
    });
  withExamples(command, [
    ['after repairing the ledger: re-plan every stream', 'meterline rebuild'],
    ['only the windows of November', 'meterline rebuild --from 2026-11-01 --to 2026-12-01'],
  ]);
}
