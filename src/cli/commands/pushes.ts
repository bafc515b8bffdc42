import type { Command } from 'commander';
import { createClickHouse } from '../../adapters/clickhouse/client';
import { migrate } from '../../adapters/clickhouse/migrations';
import { createPushStore } from '../../adapters/clickhouse/push-store';
import { resolvePushes } from '../../pipeline/resolve-pushes';
import { createContext } from '../context';
import { withExamples } from '../help';

export function registerPushes(program: Command): void {
  const pushes = program.command('pushes').description('the Stripe push ledger: settle failed and held pushes');
  const resolve = pushes
    .command('resolve <identifier...>')
    .description('mark failed or held pushes (identifiers as `meterline reconcile` lists them) as settled by hand; nothing is sent')
    .requiredOption('--note <text>', 'how it was settled (billed by hand, confirmed in Stripe, credited …): kept in the ledger')
    .action(async (identifiers: string[], opts: { note: string }) => {
      const { config } = createContext();
      const ch = createClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const r = await resolvePushes(createPushStore(ch, config.clickhouse.database), identifiers, opts.note, Date.now());
        const lines = [
          ...r.resolved.map((p) => `resolved ${p.identifier} (was ${p.status}: ${p.tenant}/${p.customer}/${p.meter}, value ${p.value})`),
          ...r.notResolvable.map((p) => `not resolved ${p.identifier}: it is ${p.status}, only failed and held pushes need a person`),
          ...r.unknown.map((id) => `not resolved ${id}: no such push`),
        ];
        process.stdout.write(lines.join('\n') + '\n');
        process.exitCode = r.unknown.length + r.notResolvable.length > 0 ? 1 : 0;
      } finally {
        await ch.close();
      }
    });
  withExamples(resolve, [
    ['list what needs a person', 'meterline reconcile --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z'],
    ['settle a failed push billed by hand', 'meterline pushes resolve ml_3f9c… --note "billed by hand on invoice in_123"'],
  ]);
}
