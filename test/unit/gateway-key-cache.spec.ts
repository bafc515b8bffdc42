import type { ApiKeyRecord } from '../../src/adapters/clickhouse/api-key-store';
import { generateApiKey } from '../../src/gateway/api-key';
import { startKeyCache } from '../../src/gateway/key-cache';
import { silentLogger } from '../../src/runtime/logger';

const record = (k: ReturnType<typeof generateApiKey>, tenant: string, revokedAt: string | null = null): ApiKeyRecord => ({ id: k.id, tenant, name: '', keySha256: k.hash, createdAt: '2026-11-29T00:00:00.000Z', revokedAt });
const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i += 1) await new Promise((r) => setTimeout(r, 5));
};

describe('the gateway key cache', () => {
  it('authenticates a known key as its tenant and forgets a key once it is revoked', async () => {
    const a = generateApiKey();
    let records = [record(a, 'acme')];
    const cache = await startKeyCache({ load: async () => records, refreshMs: 10, maxStaleMs: 60_000, clock: Date.now, logger: silentLogger() });
    try {
      expect(cache.authenticate(`Bearer ${a.key}`)).toEqual({ ok: true, keyId: a.id, tenant: 'acme' });
      // Same id, another secret: refused.
      expect(cache.authenticate(`Bearer ${a.key.slice(0, -2)}xx`)).toMatchObject({ ok: false, status: 401 });
      expect(cache.authenticate(undefined)).toMatchObject({ ok: false, status: 401, reason: expect.stringMatching(/missing Authorization/) });
      records = [record(a, 'acme', '2026-11-29T01:00:00.000Z')];
      await until(() => !cache.authenticate(`Bearer ${a.key}`).ok);
      expect(cache.authenticate(`Bearer ${a.key}`)).toEqual({ ok: false, status: 401, reason: 'invalid or revoked API key' });
    } finally {
      cache.stop();
    }
  });

  it('refuses every request with 503 once the keys could not be reloaded for too long', async () => {
    const a = generateApiKey();
    let now = 0;
    let failing = false;
    const cache = await startKeyCache({
      load: async () => {
        if (failing) throw new Error('ClickHouse down');
        return [record(a, 'acme')];
      },
      refreshMs: 10,
      maxStaleMs: 1_000,
      clock: () => now,
      logger: silentLogger(),
    });
    try {
      failing = true;
      now = 999;
      expect(cache.authenticate(`Bearer ${a.key}`).ok).toBe(true);
      now = 1_001;
      expect(cache.authenticate(`Bearer ${a.key}`)).toMatchObject({ ok: false, status: 503 });
    } finally {
      cache.stop();
    }
  });

  it('will not start without the key table', async () => {
    await expect(startKeyCache({ load: () => Promise.reject(new Error('no table')), refreshMs: 10, maxStaleMs: 1_000, clock: Date.now, logger: silentLogger() })).rejects.toThrow(/meterline migrate/);
  });
});
