import { classifyStripeError } from '../../src/adapters/stripe/errors';
import { redactSecrets, secretsInEnv } from '../../src/runtime/redact';

describe('secrets are scrubbed from text before it is printed or stored', () => {
  it('replaces configured secret values wherever they appear', () => {
    expect(redactSecrets('auth failed for hunter22 (hunter22)', ['hunter22'])).toBe('auth failed for [redacted] ([redacted])');
    // Too short to replace blindly.
    expect(redactSecrets('abc', ['abc'])).toBe('abc');
  });

  it('replaces Stripe keys (also as Stripe masks them), webhook secrets and URL passwords', () => {
    expect(redactSecrets('Invalid API Key provided: sk_test_****abcd')).toBe('Invalid API Key provided: [redacted]');
    expect(redactSecrets('key rk_live_51Habc and whsec_AbC+/9=')).toBe('key [redacted] and [redacted]');
    expect(redactSecrets('GET http://user:pa55@ch.internal:8123/?query=1 failed')).toBe('GET http://[redacted]@ch.internal:8123/?query=1 failed');
    expect(redactSecrets('an event already exists with identifier ml_0123')).toBe('an event already exists with identifier ml_0123');
  });

  it('finds the secrets of an environment, even an invalid one', () => {
    expect(
      secretsInEnv({ STRIPE_API_KEY: ' sk_test_x ', CLICKHOUSE_PASSWORD: 'pw1234', CLICKHOUSE_URL: 'http://u:p%40ss@h:1', SCHEMA_REGISTRY_URL: 'not a url', STRIPE_WEBHOOK_SECRET: '' }).sort(),
    ).toEqual(['p%40ss', 'p@ss', 'pw1234', 'sk_test_x'].sort());
  });

  it("keeps Stripe's 401 message, without the key, in a push's error", () => {
    const err = Object.assign(new Error('Invalid API Key provided: sk_live_****wxyz'), { type: 'StripeAuthenticationError', statusCode: 401 });
    expect(classifyStripeError(err)).toEqual({ kind: 'retry', status: 401, reason: 'StripeAuthenticationError 401: Invalid API Key provided: [redacted]' });
  });
});
