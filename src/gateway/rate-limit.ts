/**
 * Per-key token buckets: each key may make `perSecond` requests per second on average, in
 * bursts of up to `burst`. Never waits: a request without a token is answered 429 with the
 * seconds until one is available (Retry-After). Buckets live in one gateway's memory, so N
 * gateways behind a load balancer allow up to N times the rate.
 */
export interface KeyRateLimiter {
  /** 0: granted; otherwise the whole seconds to wait before a token is available. */
  take(keyId: string): number;
}

export function createKeyRateLimiter(opts: { perSecond: number; burst: number; now?: () => number }): KeyRateLimiter {
  const now = opts.now ?? Date.now;
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(keyId) {
      const t = now();
      const b = buckets.get(keyId) ?? { tokens: opts.burst, at: t };
      b.tokens = Math.min(opts.burst, b.tokens + ((t - b.at) * opts.perSecond) / 1000);
      b.at = t;
      buckets.set(keyId, b);
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.max(1, Math.ceil((1 - b.tokens) / opts.perSecond));
    },
  };
}
