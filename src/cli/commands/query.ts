import { Option, type Command } from 'commander';
import { queryUsage } from '../../adapters/clickhouse/usage-query';
import { parseIsoTime } from '../../domain/iso-time';
import type { QueryWindow } from '../../domain/windows';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { formatOption, renderRows, type OutputFormat } from '../format';
import { withExamples } from '../help';

export const USAGE_COLUMNS = ['tenant', 'customer', 'meter', 'window_start', 'window_end', 'value', 'events', 'state'] as const;

export function isoTime(name: string, v: string): number {
  const t = parseIsoTime(v);
  if (t === undefined) {
    throw new MeterlineError('bad_argument', `--${name} must be an ISO-8601 date or date-time (e.g. 2026-11-01T00:00:00Z), got ${JSON.stringify(v)}`);
  }
  return t;
}

export function registerQuery(program: Command): void {
  const command = program
    .command('query')
    .description('usage per customer, meter and window (exact values from the deduplicated ledger)')
    .requiredOption('--tenant <tenant>', 'tenant')
    .option('--customer <customer>', 'only this customer')
    .option('--meter <meter>', 'only this meter')
    .requiredOption('--from <iso>', 'windows starting at or after this time (UTC unless a zone is given)')
    .requiredOption('--to <iso>', 'windows starting before this time')
    .addOption(new Option('--window <window>', "report per window (default: each meter's own)").choices(['minute', 'hour', 'day', 'month']))
    .addOption(formatOption())
    .action(async (opts: { tenant: string; customer?: string; meter?: string; from: string; to: string; window?: QueryWindow; format: OutputFormat }) => {
      const from = isoTime('from', opts.from);
      const to = isoTime('to', opts.to);
      if (from >= to) throw new MeterlineError('bad_argument', '--from must be before --to');
      const { config } = createContext();
      const ch = await openClickHouse(config, { readOnly: true });
      try {
        const rows = await queryUsage(ch, config.clickhouse.database, { ...opts, from, to });
        process.stdout.write(renderRows(rows as unknown as Record<string, unknown>[], USAGE_COLUMNS, opts.format));
      } finally {
        await ch.close();
      }
    });
  withExamples(command, [
    ['usage of one tenant in November, per meter window', 'meterline query --tenant acme --from 2026-11-01 --to 2026-12-01'],
    ['one customer, rolled up per day, as CSV', 'meterline query --tenant acme --customer c-42 --window day --from 2026-11-01 --to 2026-12-01 --format csv > usage.csv'],
  ]);
}
