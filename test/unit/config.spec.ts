import { ConfigError, loadConfig, redactConfig } from '../../src/config/config';

describe('configuration', () => {
  it('runs on embedded defaults with nothing set', () => {
    const c = loadConfig({}, '/srv/app');
    expect(c.kafka.brokers).toEqual([]);
    expect(c.clickhouse.url).toBeUndefined();
    expect(c.clickhouse.embeddedPath).toBe('/srv/app/.meterline/clickhouse');
    expect(c.stripe.apiKey).toBeUndefined();
    expect(c.ingest.dedupeWindowDays).toBe(35);
    expect(c.http.host).toBe('127.0.0.1');
  });

  it('reports every problem at once, without echoing values', () => {
    let err: unknown;
    try {
      loadConfig({ KAFKA_BROKERS: 'nohostport', CLICKHOUSE_URL: 'ftp://x', DEDUPE_WINDOW_DAYS: '7', STRIPE_API_KEY: 'pk_live_secretish', METRICS_PORT: 'abc' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/KAFKA_BROKERS/);
    expect(problems.join('\n')).toMatch(/DEDUPE_WINDOW_DAYS/);
    expect((err as Error).message).not.toContain('pk_live_secretish');
  });

  it('sizes the dedupe filter from two variables, refusing a generation its 32-bit hashes cannot index', () => {
    expect(loadConfig({}).ingest.dedupeFilter).toEqual({ keys: 10_000_000, bitsPerKey: 10 });
    expect(loadConfig({ DEDUPE_FILTER_KEYS: '0' }).ingest.dedupeFilter.keys).toBe(0);
    expect(() => loadConfig({ DEDUPE_FILTER_KEYS: '500000000', DEDUPE_FILTER_BITS_PER_KEY: '10' })).toThrow(/DEDUPE_FILTER_KEYS/);
  });

  it('redacts secrets wherever config is printed', () => {
    const c = loadConfig({
      STRIPE_API_KEY: 'sk_test_abc123SECRET',
      STRIPE_WEBHOOK_SECRET: 'whsec_hook',
      CLICKHOUSE_URL: 'https://user:pw-in-url@ch.example:8443',
      CLICKHOUSE_PASSWORD: 'chpassword',
      SCHEMA_REGISTRY_URL: 'http://registry:8081',
      SCHEMA_REGISTRY_PASSWORD: 'regpass',
    });
    const printed = JSON.stringify(redactConfig(c));
    for (const secret of ['sk_test_abc123SECRET', 'whsec_hook', 'pw-in-url', 'chpassword', 'regpass']) expect(printed).not.toContain(secret);
    expect(printed).toContain('[redacted]');
  });
});
