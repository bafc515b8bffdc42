import type { Command } from 'commander';
import { createClickHouse } from '../../adapters/clickhouse/client';
import { accounting, customerTotals } from '../../adapters/clickhouse/ledger-stats';
import { migrate } from '../../adapters/clickhouse/migrations';
import { createContext } from '../context';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .description('explain the ledger: where every message went (accepted, duplicate, conflict, rejected) and totals per customer')
    .option('--by-customer', 'include event count and exact sum per (tenant, customer, meter)')
    .option('--json', 'print JSON')
    .action(async (opts: { byCustomer?: boolean; json?: boolean }) => {
      const { config } = createContext();
      const ch = createClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const acc = await accounting(ch, config.clickhouse.database, config.kafka.topic);
        const totals = opts.byCustomer ? await customerTotals(ch, config.clickhouse.database) : undefined;
        if (opts.json) {
          process.stdout.write(JSON.stringify({ accounting: acc, ...(totals ? { totals } : {}) }) + '\n');
          return;
        }
        const classified = acc.accepted + acc.duplicates + acc.conflicts + acc.rejected;
        process.stdout.write(
          [
            `messages classified: ${classified}`,
            `  accepted   ${acc.accepted}`,
            `  duplicates ${acc.duplicates}`,
            `  conflicts  ${acc.conflicts}`,
            `  rejected   ${acc.rejected}  (redriven since: ${acc.redriven})`,
            acc.classifiedTwice === 0 ? '  every message is in exactly one place' : `  WARNING: ${acc.classifiedTwice} messages recorded in two places`,
            ...(totals ?? []).map((t) => `${t.tenant}\t${t.customer}\t${t.meter}\t${t.events}\t${t.value}`),
          ].join('\n') + '\n',
        );
      } finally {
        await ch.close();
      }
    });
}
