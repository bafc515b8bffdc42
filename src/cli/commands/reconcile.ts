import type { Command } from 'commander';
import { loadMeterCatalog } from '../../adapters/meters-file';
import { stripeClientFromConfig } from '../../adapters/stripe/from-config';
import { reconcile } from '../../pipeline/reconcile';
import { createRateLimiter } from '../../runtime/rate-limiter';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { formatOption, renderRows, type OutputFormat } from '../format';
import { withExamples } from '../help';
import { isoTime } from './query';

const DRIFT_COLUMNS = ['tenant', 'customer', 'meter', 'local', 'reported', 'stripe', 'unsettled', 'unpushed', 'drift', 'ok'];

export function registerReconcile(program: Command): void {
  const command = program
    .command('reconcile')
    .description("compare local totals with Stripe's meter event summaries; list usage awaiting a mapping, failed and held pushes")
    .requiredOption('--from <iso>', 'windows starting at or after this time')
    .requiredOption('--to <iso>', 'windows starting before this time')
    .option('--epsilon <fraction>', 'largest relative drift tolerated (beyond one carried unit)', '0.005')
    .addOption(formatOption())
    .action(async (opts: { from: string; to: string; epsilon: string; format: OutputFormat }) => {
      const from = isoTime('from', opts.from);
      const to = isoTime('to', opts.to);
      const epsilon = Number(opts.epsilon);
      if (!(from < to)) throw new MeterlineError('bad_argument', '--from must be before --to');
      if (!Number.isFinite(epsilon) || epsilon < 0) throw new MeterlineError('bad_argument', '--epsilon must be a non-negative number');
      const { config } = createContext();
      const ch = await openClickHouse(config, { readOnly: true });
      try {
        const stripe = stripeClientFromConfig(config, { maxNetworkRetries: 3 });
        const limiter = createRateLimiter(config.stripe.rateLimits.reconcilePerSecond);
        const report = await reconcile(ch, config.clickhouse.database, loadMeterCatalog(config.ingest.metersFile), stripe, { from, to, epsilon, pacing: { rateLimit: () => limiter.take() } });
        if (opts.format === 'json') {
          process.stdout.write(JSON.stringify(report, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
        } else if (opts.format === 'csv') {
          // One table per CSV: the drift per stream (failed and held pushes: --format json or table).
          process.stdout.write(renderRows(report.drift as unknown as Record<string, unknown>[], DRIFT_COLUMNS, 'csv'));
        } else {
          const out: string[] = [report.shadow ? 'shadow mode: comparing with the push ledger (no Stripe key)' : 'compared with Stripe meter event summaries'];
          out.push(renderRows(report.drift as unknown as Record<string, unknown>[], DRIFT_COLUMNS, 'table'));
          if (report.heldMeters.length) out.push(`meters held (their Stripe meter does not match meters.yaml; nothing is pushed for them):\n${renderRows(report.heldMeters as unknown as Record<string, unknown>[], ['meter', 'eventName', 'problem'], 'table')}`);
          if (report.awaitingMapping.length) out.push(`awaiting a Stripe mapping:\n${renderRows(report.awaitingMapping, ['tenant', 'customer', 'meter', 'total'], 'table')}`);
          for (const [title, rows] of [['failed pushes', report.failed], ['held pushes (pending > 24 h)', report.held]] as const) {
            if (rows.length) out.push(`${title}:\n${renderRows(rows.map((r) => ({ ...r, value: r.value.toString(), window: new Date(r.windowStart).toISOString() })), ['identifier', 'tenant', 'customer', 'meter', 'window', 'value', 'lastError'], 'table')}`);
          }
          out.push(report.ok ? 'no drift beyond epsilon' : 'DRIFT beyond epsilon (or held pushes): see above');
          process.stdout.write(out.join('\n') + '\n');
        }
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        await ch.close();
      }
    });
  withExamples(command, [
    ['compare the last day with Stripe (exit code 1 on drift)', 'meterline reconcile --from 2026-11-28T00:00:00Z --to 2026-11-29T00:00:00Z'],
    ['the same, for a script', 'meterline reconcile --from 2026-11-28 --to 2026-11-29 --format json'],
  ]);
}
