import { generateApiKey, hashApiKey, keyMatchesHash, parseBearer } from '../../src/gateway/api-key';
import { createKeyRateLimiter } from '../../src/gateway/rate-limit';
import { redactSecrets } from '../../src/runtime/redact';
import { createLogger } from '../../src/runtime/logger';

describe('tenant API keys', () => {
  it('are 256-bit random secrets named by an id, stored as sha256 only', () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^mlk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(a.key).not.toBe(b.key);
    expect(a.hash).toBe(hashApiKey(a.key));
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(a.hash).not.toContain(a.key.slice(17));
    expect(parseBearer(`Bearer ${a.key}`)).toEqual({ id: a.id, key: a.key });
  });

  it('match only their own hash', () => {
    const a = generateApiKey();
    expect(keyMatchesHash(a.key, a.hash)).toBe(true);
    expect(keyMatchesHash(a.key, generateApiKey().hash)).toBe(false);
    const tampered = `${a.key.slice(0, -1)}${a.key.endsWith('A') ? 'B' : 'A'}`;
    expect(keyMatchesHash(tampered, a.hash)).toBe(false);
    expect(keyMatchesHash(a.key, 'not-hex')).toBe(false);
  });

  it('refuse headers that do not carry a well-formed key', () => {
    const a = generateApiKey();
    for (const h of [undefined, '', 'Bearer', `Basic ${a.key}`, `Bearer ${a.key} extra`, `Bearer ${a.key}x`, 'Bearer mlk_zzzzzzzzzzzz_x']) expect(parseBearer(h)).toBeUndefined();
  });

  it('are redacted from error texts and from every log line, whoever logs them', () => {
    const { key } = generateApiKey();
    expect(redactSecrets(`request to /v1/usage?api_key=${key} failed`)).toBe('request to /v1/usage?api_key=[redacted] failed');
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', format: 'json', destination: { write: (l: string) => lines.push(l) } });
    logger.info({ url: `/x?k=${key}` }, `saw ${key}`);
    expect(lines.join('')).not.toContain(key);
    expect(lines.join('')).toContain('[redacted]');
  });
});

describe('the per-key rate limit', () => {
  it('grants a burst, then one request per 1/rate seconds, per key, and says how long to wait', () => {
    let t = 0;
    const limiter = createKeyRateLimiter({ perSecond: 2, burst: 3, now: () => t });
    expect([1, 2, 3, 4].map(() => limiter.take('a'))).toEqual([0, 0, 0, 1]);
    expect(limiter.take('b')).toBe(0);
    t = 499;
    expect(limiter.take('a')).toBe(1);
    t = 1_000;
    expect(limiter.take('a')).toBe(0);
    const slow = createKeyRateLimiter({ perSecond: 0.1, burst: 1, now: () => 0 });
    slow.take('a');
    expect(slow.take('a')).toBe(10);
  });
});
