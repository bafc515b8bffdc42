import { pendingDecision, pendingStats, resendDelay, RESEND_MAX_MS } from '../../src/domain/pending-resend';

const NOW = Date.parse('2026-11-22T12:00:00Z');

describe('resending pending pushes from the push cycle', () => {
  it('given a push left pending after a round of retries, then it is resent once the backoff has passed', () => {
    const p = { createdAt: NOW - 60_000, attempts: 12, lastAttemptAt: NOW - 5_000 };
    expect(pendingDecision(p, NOW, 12)).toBe('wait');
    expect(pendingDecision(p, NOW + 5_000, 12)).toBe('resend');
  });
  it('backs off between rounds, doubling, at most 5 minutes', () => {
    expect(resendDelay(12, 12)).toBe(10_000);
    expect(resendDelay(24, 12)).toBe(20_000);
    expect(resendDelay(13, 12)).toBe(20_000);
    expect(resendDelay(12 * 50, 12)).toBe(RESEND_MAX_MS);
  });
  it('given a push pending for more than 24 h, then it is held, never resent blindly', () => {
    expect(pendingDecision({ createdAt: NOW - 25 * 3_600_000, attempts: 1, lastAttemptAt: NOW - 3_600_000 }, NOW, 12)).toBe('hold');
  });
  it('reports how many are pending and the age of the oldest', () => {
    expect(pendingStats([], NOW)).toEqual({ count: 0, oldestAgeMs: 0 });
    expect(pendingStats([{ createdAt: NOW - 1000, attempts: 1, lastAttemptAt: NOW }, { createdAt: NOW - 90_000, attempts: 1, lastAttemptAt: NOW }], NOW)).toEqual({ count: 2, oldestAgeMs: 90_000 });
  });
});
