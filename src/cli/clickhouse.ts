import { clickHouseAddress, createClickHouse, type ClickHouseAddress, type ClickHouseClient } from '../adapters/clickhouse/client';
import { requireSchema } from '../adapters/clickhouse/schema-check';
import type { Config } from '../config/config';
import { MeterlineError, errorMessage } from '../runtime/errors';
import type { Logger } from '../runtime/logger';
import { redactSecrets } from '../runtime/redact';

/**
 * A ClickHouse client for a command, checked before use: unreachable → one line naming the
 * address and the setting that chose it. `readOnly`: the client runs with readonly=2 (the engine
 * refuses any write or DDL) and a missing schema is reported, never created.
 */
export async function openClickHouse(config: Config, opts: { readOnly?: boolean; logger?: Logger } = {}): Promise<ClickHouseClient> {
  const ch = createClickHouse(config, opts.logger, { readOnly: opts.readOnly });
  try {
    const ping = await ch.ping();
    if (!ping.success) throw unreachable(clickHouseAddress(config), ping.error);
    if (opts.readOnly) await requireSchema(ch, config.clickhouse.database);
    return ch;
  } catch (err) {
    await ch.close().catch(() => undefined);
    throw err;
  }
}

export function unreachable(address: ClickHouseAddress, cause: unknown): MeterlineError {
  const reason = redactSecrets(errorMessage(cause));
  const message =
    address.kind === 'server'
      ? `cannot reach ClickHouse at ${withoutCredentials(address.url)} (${reason}): check ${address.setting} and that the server is running`
      : address.kind === 'served'
        ? `cannot reach the embedded ClickHouse served by process ${address.pid} at ${address.url} (${reason}), as recorded in ${address.stateFile}: is it still running? Or set CLICKHOUSE_URL`
        : `cannot open the embedded ClickHouse at ${address.path} (${reason}): or set CLICKHOUSE_URL to use a server`;
  return new MeterlineError('clickhouse_unreachable', message, { cause });
}

function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
}
