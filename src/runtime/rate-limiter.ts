/**
 * A token bucket: at most `perSecond` grants per second on average, bursts up to `burst`.
 * `take()` resolves when a token is granted and reports how long it waited (for a metric).
 */
export function createRateLimiter(perSecond: number, opts: { burst?: number; now?: () => number } = {}) {
  const now = opts.now ?? Date.now;
  const burst = opts.burst ?? Math.max(1, Math.ceil(perSecond / 10));
  let tokens = burst;
  let last = now();
  let queue: Promise<void> = Promise.resolve();
  const refill = () => {
    const t = now();
    tokens = Math.min(burst, tokens + ((t - last) * perSecond) / 1000);
    last = t;
  };
  return {
    take(): Promise<number> {
      const started = now();
      // Callers are served in order: the chain makes each wait for the previous grant.
      const granted = queue.then(async () => {
        for (;;) {
          refill();
          if (tokens >= 1) {
            tokens -= 1;
            return;
          }
          await new Promise((r) => setTimeout(r, Math.ceil(((1 - tokens) * 1000) / perSecond)));
        }
      });
      queue = granted;
      return granted.then(() => now() - started);
    },
  };
}
