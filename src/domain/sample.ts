import type { UsageEvent } from './usage-event';

/** A small, fast, seeded PRNG (mulberry32): the same seed always gives the same workload. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SampleOptions {
  readonly count: number;
  readonly seed?: number;
  readonly tenants?: number;
  readonly customers?: number;
  readonly meters?: readonly string[];
  /** Event times are spread over [start, start + spanMs). */
  readonly start?: number;
  readonly spanMs?: number;
  /** Fraction of emitted events that are exact copies of an earlier one. */
  readonly duplicateRate?: number;
  readonly idPrefix?: string;
}

/**
 * Sample usage events for demos, tests and benchmarks. Values have up to 3 decimals, so
 * float mistakes show up; duplicates are byte-identical copies of earlier events.
 */
export function generateEvents(opts: SampleOptions): UsageEvent[] {
  const rnd = seededRandom(opts.seed ?? 1);
  const tenants = opts.tenants ?? 2;
  const customers = opts.customers ?? 20;
  const meters = opts.meters ?? ['api_calls', 'tokens', 'gpu_seconds'];
  const start = opts.start ?? Date.now() - 3_600_000;
  const span = opts.spanMs ?? 3_600_000;
  const dupRate = opts.duplicateRate ?? 0;
  const prefix = opts.idPrefix ?? 'evt';
  const out: UsageEvent[] = [];
  let unique = 0;
  for (let i = 0; i < opts.count; i += 1) {
    if (out.length > 0 && rnd() < dupRate) {
      out.push(out[Math.floor(rnd() * out.length)]!);
      continue;
    }
    const t = Math.floor(rnd() * tenants);
    const meter = meters[Math.floor(rnd() * meters.length)]!;
    out.push({
      id: `${prefix}-${opts.seed ?? 1}-${unique++}`,
      tenant: `tenant-${t}`,
      customer: `cust-${Math.floor(rnd() * customers)}`,
      meter,
      value: (Math.floor(rnd() * 100_000) / 1000).toString(),
      timestamp: start + Math.floor(rnd() * span),
      properties: { region: rnd() < 0.5 ? 'eu' : 'us' },
      source: null,
    });
  }
  return out;
}

/** The NDJSON form `meterline publish` reads. */
export function toNdjsonLine(e: UsageEvent): string {
  const { source, ...rest } = e;
  return JSON.stringify(source === null ? rest : e);
}
