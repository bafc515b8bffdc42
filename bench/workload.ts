import { seededRandom } from '../src/domain/sample';
import type { UsageEvent } from '../src/domain/usage-event';

export const BENCH_METERS = ['api_calls', 'tokens', 'gpu_seconds', 'storage_gb', 'active_users'] as const;

export interface WorkloadOptions {
  readonly events: number;
  readonly customers: number;
  readonly tenants: number;
  /** Fraction of messages that are byte-identical copies of a recent earlier event. */
  readonly duplicateRate: number;
  /** Fraction of new events whose event time lies 5 min – 3 h behind the stream (some still count, some are too late). */
  readonly lateRate: number;
  readonly seed: number;
  /** Event times advance from `start` to `start + spanMs` across the workload (plus ≤ 2 s of jitter). */
  readonly start: number;
  readonly spanMs: number;
  readonly idPrefix: string;
  /** When set, a new event's time is this clock's reading (copies keep their original's). */
  readonly clock?: () => number;
}

/** Copies are drawn from the last RECENT distinct events: bounded memory whatever the size. */
const RECENT = 8192;

/**
 * The benchmark workload, generated lazily (a million events are never held at once) and
 * deterministic for a seed. Counts of what it produced are kept in `stats` as it goes.
 */
export function workload(opts: WorkloadOptions): { events: Generator<UsageEvent>; stats: { produced: number; copies: number; late: number } } {
  const stats = { produced: 0, copies: 0, late: 0 };
  function* gen(): Generator<UsageEvent> {
    const rnd = seededRandom(opts.seed);
    const recent: UsageEvent[] = [];
    let unique = 0;
    for (let i = 0; i < opts.events; i += 1) {
      stats.produced += 1;
      if (recent.length > 0 && rnd() < opts.duplicateRate) {
        stats.copies += 1;
        yield recent[Math.floor(rnd() * recent.length)]!;
        continue;
      }
      const meter = BENCH_METERS[Math.floor(rnd() * BENCH_METERS.length)]!;
      let timestamp = opts.clock ? opts.clock() : opts.start + Math.floor((i / opts.events) * opts.spanMs) + Math.floor(rnd() * 2_000);
      if (rnd() < opts.lateRate) {
        stats.late += 1;
        timestamp -= 300_000 + Math.floor(rnd() * 3 * 3_600_000);
      }
      const e: UsageEvent = {
        id: `${opts.idPrefix}-${unique++}`,
        tenant: `tenant-${Math.floor(rnd() * opts.tenants)}`,
        customer: `cust-${Math.floor(rnd() * opts.customers)}`,
        meter,
        value: (Math.floor(rnd() * 100_000) / 1000).toString(),
        timestamp,
        properties: { region: rnd() < 0.5 ? 'eu' : 'us', user: `u-${Math.floor(rnd() * 50)}` },
        source: 'bench',
      };
      if (recent.length < RECENT) recent.push(e);
      else recent[Math.floor(rnd() * RECENT)] = e;
      yield e;
    }
  }
  return { events: gen(), stats };
}

/** p in [0, 1] of a sorted array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}
