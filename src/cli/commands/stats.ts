import type { Command } from 'commander';
import { accounting, customerTotals, pushStatusCounts, type CustomerTotal } from '../../adapters/clickhouse/ledger-stats';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { formatOption, renderRows, type OutputFormat } from '../format';
import { withExamples } from '../help';

const TOTAL_COLUMNS = ['tenant', 'customer', 'meter', 'events', 'value', 'counted_events', 'counted_value', 'counter_events', 'counter_value'];
const ACCOUNTING_COLUMNS = ['accepted', 'duplicates', 'conflicts', 'rejected', 'redriven', 'classified_twice'];

export function registerStats(program: Command): void {
  const command = program
    .command('stats')
    .description('explain the ledger: where every message went (accepted, duplicate, conflict, rejected) and totals per customer')
    .option('--by-customer', 'include event count and exact sum per (tenant, customer, meter)')
    .addOption(formatOption())
    .option('--json', 'same as --format json')
    .action(async (opts: { byCustomer?: boolean; format: OutputFormat; json?: boolean }) => {
      const format: OutputFormat = opts.json ? 'json' : opts.format;
      const { config } = createContext();
      const ch = await openClickHouse(config, { readOnly: true });
      try {
        const acc = await accounting(ch, config.clickhouse.database, config.kafka.topic);
        const totals = opts.byCustomer ? await customerTotals(ch, config.clickhouse.database) : undefined;
        const pushes = await pushStatusCounts(ch, config.clickhouse.database);
        if (format === 'json') {
          process.stdout.write(JSON.stringify({ accounting: acc, pushes, ...(totals ? { totals } : {}) }) + '\n');
          return;
        }
        if (format === 'csv') {
          // CSV holds one table: the totals with --by-customer, else the accounting as one row.
          const accountingRow = { ...acc, classified_twice: acc.classifiedTwice };
          process.stdout.write(totals ? renderRows(totals.map(totalRow), TOTAL_COLUMNS, 'csv') : renderRows([accountingRow], ACCOUNTING_COLUMNS, 'csv'));
          return;
        }
        const classified = acc.accepted + acc.duplicates + acc.conflicts + acc.rejected;
        const summary = [
          `messages classified: ${classified}`,
          `  accepted   ${acc.accepted}`,
          `  duplicates ${acc.duplicates}`,
          `  conflicts  ${acc.conflicts}`,
          `  rejected   ${acc.rejected}  (redriven since: ${acc.redriven})`,
          acc.classifiedTwice === 0 ? '  every message is in exactly one place' : `  WARNING: ${acc.classifiedTwice} messages recorded in two places`,
          `pushes: ${Object.entries(pushes).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}`,
        ].join('\n');
        process.stdout.write(summary + '\n' + (totals ? `\n${renderRows(totals.map(totalRow), TOTAL_COLUMNS, 'table')}` : ''));
      } finally {
        await ch.close();
      }
    });
  withExamples(command, [
    ['where every message went', 'meterline stats'],
    ['exact totals per customer and meter, as a table', 'meterline stats --by-customer'],
    ['the same for a spreadsheet', 'meterline stats --by-customer --format csv > totals.csv'],
  ]);
}

function totalRow(t: CustomerTotal): Record<string, unknown> {
  return {
    tenant: t.tenant,
    customer: t.customer,
    meter: t.meter,
    events: t.events,
    value: t.value,
    counted_events: t.countedEvents,
    counted_value: t.countedValue,
    counter_events: t.counterEvents,
    counter_value: t.counterValue,
  };
}
