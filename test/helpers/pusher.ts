import { createPushStore } from '../../src/adapters/clickhouse/push-store';
import { createStreamStore } from '../../src/adapters/clickhouse/stream-store';
import type { BillingSink } from '../../src/adapters/stripe/billing-sink';
import type { MeterCatalog } from '../../src/domain/meters';
import { createPusher, type Pusher, type PusherDeps } from '../../src/pipeline/pusher';
import { silentLogger } from '../../src/runtime/logger';
import { createRateLimiter } from '../../src/runtime/rate-limiter';
import type { TestClickHouse } from './clickhouse';

export interface TestPusherOptions extends Partial<PusherDeps> {
  /** Stripe calls per second granted by the rate limiter (default 1,000: Stripe's live limit). */
  readonly callsPerSecond?: number;
}

/**
 * A pusher over the test database's stores, as the worker wires one; backoff waits are cut to
 * 20 ms at most (retries happen as in production, only sooner). Any dependency can be replaced.
 */
export function testPusher(ch: TestClickHouse, sink: BillingSink, catalog: MeterCatalog, opts: TestPusherOptions = {}): Pusher {
  const { callsPerSecond = 1000, ...deps } = opts;
  const limiter = createRateLimiter(callsPerSecond);
  return createPusher({
    streams: createStreamStore(ch.client, ch.database),
    pushes: createPushStore(ch.client, ch.database),
    sink,
    meters: () => catalog,
    clock: Date.now,
    logger: silentLogger(),
    rateLimit: () => limiter.take(),
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 20))),
    ...deps,
  });
}

/** One cycle, then every push it launched settled. */
export async function cycleAndDrain(p: Pusher) {
  const summary = await p.cycle();
  await p.drain();
  return summary;
}
