import { ConfigError, loadConfig, redactConfig, secretValues } from '../../src/config/config';
import { configWarnings, describeStripeRateLimit } from '../../src/config/warnings';

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

  it('names the allowed range of a number that is out of range or not a number', () => {
    const problems = (env: NodeJS.ProcessEnv) => {
      try {
        loadConfig(env);
      } catch (e) {
        return (e as ConfigError).problems;
      }
      return [];
    };
    expect(problems({ DEDUPE_WINDOW_DAYS: '30' })).toEqual([expect.stringContaining('DEDUPE_WINDOW_DAYS must be at least 35')]);
    expect(problems({ DEDUPE_WINDOW_DAYS: '30' })[0]).toContain('got 30');
    expect(problems({ METRICS_PORT: '-1' })).toEqual(['METRICS_PORT must be 0–65535, got -1']);
    expect(problems({ METRICS_PORT: '70000' })).toEqual(['METRICS_PORT must be 0–65535, got 70000']);
    expect(problems({ METRICS_PORT: '80.5' })).toEqual(['METRICS_PORT must be a whole number (0–65535), got 80.5']);
    expect(problems({ METRICS_PORT: 'http' })).toEqual(['METRICS_PORT must be a whole number (0–65535)']);
    expect(problems({ STRIPE_PORT: '0' })).toEqual(['STRIPE_PORT must be 1–65535, got 0']);
    expect(problems({ LOG_FORMAT: 'xml' })).toEqual(['LOG_FORMAT must be one of auto, json, pretty']);
    expect(loadConfig({ METRICS_PORT: ' 0 ', STRIPE_PORT: '12111', LOG_FORMAT: 'json' })).toMatchObject({ http: { metricsPort: 0 }, stripe: { port: 12111 }, logFormat: 'json' });
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

  it('configures usage alerts: the webhook needs its signing secret and an allotments file; the secret is redacted', () => {
    expect(loadConfig({}).alerts).toEqual({ allotmentsFile: undefined, topic: 'usage.alerts', webhookUrl: undefined, webhookSecret: undefined });
    expect(() => loadConfig({ ALLOTMENTS_FILE: 'a.yaml', ALERT_WEBHOOK_URL: 'https://hooks.example/usage' })).toThrow(/ALERT_WEBHOOK_SECRET must be set with ALERT_WEBHOOK_URL/);
    expect(() => loadConfig({ ALERT_WEBHOOK_URL: 'https://hooks.example/usage', ALERT_WEBHOOK_SECRET: 'alert-signing-secret-1' })).toThrow(/ALERT_WEBHOOK_URL must come with ALLOTMENTS_FILE/);
    expect(() => loadConfig({ ALLOTMENTS_FILE: 'a.yaml', ALERT_WEBHOOK_URL: 'ftp://x', ALERT_WEBHOOK_SECRET: 'short' })).toThrow(/ALERT_WEBHOOK_URL must be a URL[\s\S]*ALERT_WEBHOOK_SECRET must be at least 16 characters/);
    expect(() => loadConfig({ CHAOS_ALERT_KILL_AT: 'sometime' })).toThrow(/CHAOS_ALERT_KILL_AT must be after_pending or after_publish/);
    const c = loadConfig({ ALLOTMENTS_FILE: 'a.yaml', ALERT_WEBHOOK_URL: 'https://u:url-pass@hooks.example/usage', ALERT_WEBHOOK_SECRET: 'alert-signing-secret-1' }, '/srv');
    expect(c.alerts).toMatchObject({ allotmentsFile: '/srv/a.yaml', webhookSecret: 'alert-signing-secret-1' });
    const printed = JSON.stringify(redactConfig(c));
    for (const secret of ['alert-signing-secret-1', 'url-pass']) expect(printed).not.toContain(secret);
    expect(secretValues(c)).toEqual(expect.arrayContaining(['alert-signing-secret-1', 'url-pass']));
  });

  it('derives the Stripe rate limit from the key: under the 25/s test-mode limit with a test key, below 1000/s live; STRIPE_RATE_LIMIT overrides', () => {
    const test = loadConfig({ STRIPE_API_KEY: 'sk_test_abc' }).stripe;
    expect(test.rateLimitPerSecond + test.rateLimits.reconcilePerSecond).toBeLessThan(25);
    expect(test.rateLimits).toMatchObject({ keyMode: 'test', source: 'test-mode default' });
    expect(loadConfig({ STRIPE_API_KEY: 'rk_test_abc' }).stripe.rateLimitPerSecond).toBe(test.rateLimitPerSecond);
    const live = loadConfig({ STRIPE_API_KEY: 'sk_live_abc' }).stripe;
    expect(live.rateLimitPerSecond).toBeLessThan(1000);
    expect(live.rateLimitPerSecond).toBeGreaterThanOrEqual(800);
    expect(live.rateLimits).toMatchObject({ keyMode: 'live', source: 'live-mode default' });
    const overridden = loadConfig({ STRIPE_API_KEY: 'sk_test_abc', STRIPE_RATE_LIMIT: '10' });
    expect(overridden.stripe).toMatchObject({ rateLimitPerSecond: 10, rateLimits: { source: 'STRIPE_RATE_LIMIT' } });
    expect(describeStripeRateLimit(overridden)).toMatch(/10 pushes\/s \(STRIPE_RATE_LIMIT\)/);
    expect(describeStripeRateLimit(loadConfig({ STRIPE_API_KEY: 'sk_test_abc' }))).toMatch(/20 pushes\/s \(test-mode default; STRIPE_RATE_LIMIT overrides it\)/);
    expect(configWarnings(loadConfig({ STRIPE_API_KEY: 'sk_test_abc', STRIPE_RATE_LIMIT: '1000' })).join('\n')).toMatch(/test-mode key.*25 operations\/s/);
  });

  it('warns when the v2 stream runs without error-report webhooks (failed events would count as reported)', () => {
    const stream = { STRIPE_API_KEY: 'sk_live_abc', STRIPE_MODE: 'meter_event_stream' };
    expect(configWarnings(loadConfig(stream)).join('\n')).toMatch(/meter_event_stream without STRIPE_WEBHOOK_SECRET/);
    expect(configWarnings(loadConfig({ ...stream, STRIPE_WEBHOOK_SECRET: 'whsec_x' }))).toEqual([]);
    expect(configWarnings(loadConfig({ STRIPE_API_KEY: 'sk_live_abc' }))).toEqual([]);
  });
});
