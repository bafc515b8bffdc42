import { runCli } from '../helpers/cli';

describe('meterline config: the Stripe settings that put billing at risk', () => {
  it('says which rate limit applies (a test key: the test-mode default) and warns about the v2 stream without error-report webhooks', async () => {
    const r = await runCli(['config'], { env: { STRIPE_API_KEY: 'sk_test_cliCheck123', STRIPE_MODE: 'meter_event_stream' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).stripe).toMatchObject({ rateLimitPerSecond: 20, rateLimits: { keyMode: 'test', source: 'test-mode default' } });
    expect(r.stderr).toMatch(/Stripe rate limit: 20 pushes\/s \(test-mode default/);
    expect(r.stderr).toMatch(/warning: STRIPE_MODE=meter_event_stream without STRIPE_WEBHOOK_SECRET/);
    expect(r.stdout + r.stderr).not.toContain('sk_test_cliCheck123');
    const quiet = await runCli(['config'], { env: { STRIPE_API_KEY: 'sk_live_cliCheck123', STRIPE_MODE: 'meter_event_stream', STRIPE_WEBHOOK_SECRET: 'whsec_x' } });
    expect(quiet.stderr).not.toMatch(/warning/);
    expect(quiet.stderr).toMatch(/900 pushes\/s \(live-mode default/);
  });
});
