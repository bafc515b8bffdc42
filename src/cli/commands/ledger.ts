import fs from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { Command } from 'commander';
import { createDecoderFromConfig } from '../../adapters/avro/from-config';
import { importCustomers } from '../../adapters/clickhouse/customer-store';
import { createLedgerStore } from '../../adapters/clickhouse/ledger-store';
import { migrate } from '../../adapters/clickhouse/migrations';
import { listRejected } from '../../adapters/clickhouse/rejected-store';
import { loadMeterCatalog } from '../../adapters/meters-file';
import { parseCustomerRows } from '../../domain/customers';
import { redriveDeadLetters } from '../../pipeline/redrive';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { formatOption, type OutputFormat, renderRows } from '../format';
import { withExamples } from '../help';

const DAY_MS = 86_400_000;
const DLQ_COLUMNS = ['source', 'status', 'reason_code', 'tenant', 'event_id', 'rejected_at', 'reason'];

export function registerLedgerCommands(program: Command): void {
  const customers = program.command('customers').description('customer ↔ Stripe customer mappings');
  const importCommand = customers
    .command('import <file>')
    .description('import a CSV with header tenant,customer,stripe_customer_id (latest import wins)')
    .action(async (file: string) => {
      const { config } = createContext();
      const rows = parse(fs.readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Record<string, string>[];
      const { mappings, problems } = parseCustomerRows(rows);
      if (problems.length > 0) {
        process.stderr.write(`${file}: nothing imported:\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
        process.exitCode = 1;
        return;
      }
      const ch = await openClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        await importCustomers(ch, config.clickhouse.database, mappings, Date.now());
      } finally {
        await ch.close();
      }
      process.stdout.write(`imported ${mappings.length} customer mappings\n`);
    });
  withExamples(importCommand, [['map customers to Stripe customers (CSV header: tenant,customer,stripe_customer_id)', 'meterline customers import customers.csv']]);

  const dlq = program.command('dlq').description('dead letters: messages that could not be accepted, with their reasons');
  const list = dlq
    .command('list')
    .description('list dead letters with their reasons')
    .option('--reason <code>', 'only this reason code (empty, bad_magic, unknown_schema, malformed_avro, invalid_event, unknown_meter)')
    .option('--all', 'include redriven ones')
    .option('--limit <n>', 'at most this many', '100')
    .addOption(formatOption())
    .action(async (opts: { reason?: string; all?: boolean; limit: string; format: OutputFormat }) => {
      const limit = Number(opts.limit);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new MeterlineError('bad_argument', `--limit must be a whole number of at least 1, got ${JSON.stringify(opts.limit)}`);
      const { config } = createContext();
      const ch = await openClickHouse(config, { readOnly: true });
      try {
        const rows = await listRejected(ch, config.clickhouse.database, { reason: opts.reason, status: opts.all ? undefined : 'rejected', limit });
        if (opts.format === 'json') {
          process.stdout.write(
            JSON.stringify(rows.map((r) => ({ ...r.ref, reason_code: r.reasonCode, reason: r.reason, tenant: r.tenant, event_id: r.eventId, rejected_at: r.rejectedAt, status: r.status }))) + '\n',
          );
          return;
        }
        const table = rows.map((r) => ({
          source: `${r.ref.topic}/${r.ref.partition}@${r.ref.offset}`,
          status: r.status,
          reason_code: r.reasonCode,
          tenant: r.tenant,
          event_id: r.eventId,
          rejected_at: r.rejectedAt,
          reason: r.reason,
        }));
        process.stdout.write(renderRows(table, DLQ_COLUMNS, opts.format));
        if (opts.format === 'table') process.stdout.write(`${rows.length} dead letter(s)${rows.length === limit ? ` (the first ${limit}: --limit for more)` : ''}\n`);
      } finally {
        await ch.close();
      }
    });
  withExamples(list, [
    ['dead letters still to deal with', 'meterline dlq list'],
    ['those of one reason, as JSON', 'meterline dlq list --reason unknown_meter --format json'],
    ['all of them, redriven ones included, for a spreadsheet', 'meterline dlq list --all --limit 100000 --format csv > dead-letters.csv'],
  ]);
  const redrive = dlq
    .command('redrive')
    .description('re-process dead letters through the normal dedupe path (after fixing their cause, e.g. adding a meter)')
    .option('--reason <code>', 'only this reason code')
    .action(async (opts: { reason?: string }) => {
      const { config } = createContext();
      const ch = await openClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const meters = loadMeterCatalog(config.ingest.metersFile);
        const summary = await redriveDeadLetters(
          ch,
          config.clickhouse.database,
          {
            decoder: createDecoderFromConfig(config),
            meters: () => meters,
            ledger: createLedgerStore(ch, config.clickhouse.database, { dedupeWindowMs: config.ingest.dedupeWindowDays * DAY_MS }),
            clock: Date.now,
            maxFutureSkewMs: config.ingest.maxFutureSkewMs,
          },
          { reason: opts.reason },
        );
        process.stdout.write(JSON.stringify(summary) + '\n');
      } finally {
        await ch.close();
      }
    });
  withExamples(redrive, [
    ['after adding the missing meter to meters.yaml', 'meterline dlq redrive --reason unknown_meter'],
    ['every dead letter still rejected', 'meterline dlq redrive'],
  ]);
}
