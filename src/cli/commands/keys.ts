import type { Command } from 'commander';
import { createApiKeyStore } from '../../adapters/clickhouse/api-key-store';
import { migrate } from '../../adapters/clickhouse/migrations';
import { LIMITS } from '../../domain/usage-event';
import { generateApiKey } from '../../gateway/api-key';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { formatOption, renderRows, type OutputFormat } from '../format';
import { withExamples } from '../help';

const KEY_COLUMNS = ['id', 'tenant', 'name', 'created', 'revoked'] as const;

export function registerKeys(program: Command): void {
  const keys = program.command('keys').description("tenant API keys of the HTTP gateway (only each key's sha256 is stored)");

  const create = keys
    .command('create')
    .description('create an API key for a tenant and print it once (it cannot be shown again)')
    .requiredOption('--tenant <tenant>', 'the tenant the key writes and reads as')
    .option('--name <name>', 'a label to recognise the key by', '')
    .option('--json', 'print {id, tenant, name, key} as JSON')
    .action(async (opts: { tenant: string; name: string; json?: boolean }) => {
      if (opts.tenant.trim() !== opts.tenant || opts.tenant === '' || opts.tenant.length > LIMITS.nameMaxLength || /[\u0000-\u001f\u007f-\u009f]/.test(opts.tenant)) {
        throw new MeterlineError('bad_argument', '--tenant must be 1-128 printable characters without leading or trailing spaces');
      }
      const { config } = createContext();
      const ch = await openClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const key = generateApiKey();
        await createApiKeyStore(ch, config.clickhouse.database).create({ id: key.id, tenant: opts.tenant, name: opts.name, keySha256: key.hash, createdAt: Date.now() });
        if (opts.json) process.stdout.write(`${JSON.stringify({ id: key.id, tenant: opts.tenant, name: opts.name, key: key.key })}\n`);
        else {
          process.stdout.write(`${key.key}\n`);
          process.stderr.write(`created key ${key.id} for tenant ${opts.tenant}: store it now, it is not shown again (send it as "Authorization: Bearer <key>")\n`);
        }
      } finally {
        await ch.close();
      }
    });
  withExamples(create, [
    ['a key for tenant acme (printed once, on standard output)', 'meterline keys create --tenant acme --name billing-service'],
    ['into a variable, for curl', 'KEY=$(meterline keys create --tenant acme)'],
  ]);

  const list = keys
    .command('list')
    .description('list the API keys (id, tenant, name, created, revoked; never the keys themselves)')
    .addOption(formatOption())
    .action(async (opts: { format: OutputFormat }) => {
      const { config } = createContext();
      // Reading never writes: readonly=2, and a missing table is reported, not created.
      const ch = await openClickHouse(config, { readOnly: true });
      try {
        const keys = await createApiKeyStore(ch, config.clickhouse.database).list();
        const rows = keys.map((k) => ({ id: k.id, tenant: k.tenant, name: k.name, created: k.createdAt, revoked: k.revokedAt }));
        process.stdout.write(renderRows(rows, KEY_COLUMNS, opts.format));
      } finally {
        await ch.close();
      }
    });
  withExamples(list, [
    ['every key, as a table', 'meterline keys list'],
    ['as JSON, for scripts', 'meterline keys list --format json'],
  ]);

  const revoke = keys
    .command('revoke')
    .description('revoke an API key: every gateway refuses it within seconds (GATEWAY_KEY_REFRESH_MS)')
    .argument('<id>', 'the key id (`keys list`; the 12 hex digits after mlk_)')
    .action(async (id: string) => {
      const { config } = createContext();
      const ch = await openClickHouse(config);
      try {
        await migrate(ch, config.clickhouse.database);
        const found = await createApiKeyStore(ch, config.clickhouse.database).revoke(id, Date.now());
        if (!found) throw new MeterlineError('not_found', `no API key with id ${JSON.stringify(id.slice(0, 64))} (see \`meterline keys list\`)`);
        process.stdout.write(`revoked ${id}\n`);
      } finally {
        await ch.close();
      }
    });
  withExamples(revoke, [['revoke a key by its id', 'meterline keys revoke 3f9a0c1b2d4e']]);
}
