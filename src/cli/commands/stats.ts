import type { Command } from 'commander';
import { createClickHouse } from '../../adapters/clickhouse/client';
import { accounting, customerTotals, pushStatusCounts } from '../../adapters/clickhouse/ledger-stats';
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
        const pushes = await pushStatusCounts(ch, config.clickhouse.database);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ accounting: acc, pushes, ...(totals ? { totals } : {}) }) + '\n');
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
            `pushes: ${Object.entries(pushes).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}`,
            ...(totals ? ['tenant\tcustomer\tmeter\tevents\tvalue\tcounted events\tcounted value\tcounters events\tcounters value'] : []),
            ...(totals ?? []).map((t) => [t.tenant, t.customer, t.meter, t.events, t.value, t.countedEvents, t.countedValue, t.counterEvents, t.counterValue].join('\t')),
          ].join('\n') + '\n',
        );
      } finally {
        await ch.close();
      }
    });
}
