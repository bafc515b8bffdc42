import type { ApiKeyRecord } from '../adapters/clickhouse/api-key-store';
import type { Logger } from '../runtime/logger';
import { keyMatchesHash, parseBearer } from './api-key';

export type Authentication =
  | { readonly ok: true; readonly keyId: string; readonly tenant: string }
  | { readonly ok: false; readonly status: 401 | 503; readonly reason: string };

export interface KeyCache {
  authenticate(authorization: string | undefined): Authentication;
  stop(): void;
}

/**
 * The gateway's copy of the key table, reloaded every `refreshMs` (a revoked key stops working
 * within about that long, on every gateway). If the table cannot be read for `maxStaleMs`, every
 * request is refused with 503: a gateway that cannot see revocations must not keep honouring keys.
 */
export async function startKeyCache(opts: {
  load: () => Promise<readonly ApiKeyRecord[]>;
  refreshMs: number;
  maxStaleMs: number;
  clock: () => number;
  logger: Logger;
}): Promise<KeyCache> {
  let byId = new Map<string, ApiKeyRecord>();
  let loadedAt: number | undefined;
  const refresh = async () => {
    try {
      const records = await opts.load();
      byId = new Map(records.filter((r) => r.revokedAt === null).map((r) => [r.id, r]));
      loadedAt = opts.clock();
    } catch (err) {
      opts.logger.warn({ err }, 'cannot reload the API keys; keeping the last copy');
    }
  };
  await refresh();
  if (loadedAt === undefined) throw new Error('cannot read the API keys from ClickHouse (api_keys): run `meterline migrate` and check ClickHouse');
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const loop = () => {
    timer = setTimeout(() => {
      void refresh().finally(() => {
        if (!stopped) loop();
      });
    }, opts.refreshMs);
    timer.unref();
  };
  loop();
  return {
    authenticate(authorization) {
      if (opts.clock() - loadedAt! > opts.maxStaleMs) return { ok: false, status: 503, reason: 'the API keys cannot be checked right now: retry later' };
      if (authorization === undefined) return { ok: false, status: 401, reason: 'missing Authorization: Bearer <API key>' };
      const bearer = parseBearer(authorization);
      if (!bearer) return { ok: false, status: 401, reason: 'invalid API key' };
      const record = byId.get(bearer.id);
      // A hash is compared even for an unknown id, so both cases take the same time.
      const matches = keyMatchesHash(bearer.key, record?.keySha256 ?? '0'.repeat(64));
      if (!record || !matches) return { ok: false, status: 401, reason: 'invalid or revoked API key' };
      return { ok: true, keyId: record.id, tenant: record.tenant };
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
