/** Benchmark parameters: the defaults are the (1M events, 10k customers, 5 meters, 5 % copies, 1 % late). */
export interface BenchOptions {
  readonly quick: boolean;
  readonly events: number;
  readonly customers: number;
  readonly tenants: number;
  readonly partitions: number;
  readonly duplicateRate: number;
  readonly lateRate: number;
  readonly seed: number;
  /** Offered rate (events/s) of the latency phase, and how long it is offered. */
  readonly rate: number;
  readonly latencySeconds: number;
  /** Keep the temporary data directory (ClickHouse files) for inspection. */
  readonly keep: boolean;
  /** The broker measured against: the dev broker (librdkafka's mock) or Apache Kafka itself. */
  readonly broker: 'dev' | 'kafka';
}

export const USAGE = `usage: npm run bench [-- options]
  --quick                 a smaller run (~1 minute): 100k events, 1k customers, 10 s of latency
  --events N              events published for the throughput phase (default 1000000)
  --customers N           distinct customers (default 10000)
  --tenants N             distinct tenants (default 1; customers are per tenant)
  --partitions N          partitions of the benchmark topics (default 8)
  --duplicates RATE       fraction of copies (default 0.05)
  --late RATE             fraction of late events (default 0.01)
  --rate N                offered events/s in the latency phase (default 20000)
  --latency-seconds N     length of the latency phase (default 30)
  --seed N                workload seed (default 42)
  --keep                  keep the temporary data directory
  --broker dev|kafka      the dev broker (default) or Apache Kafka (KAFKA_VERSION, default the newest tested)
JSON result on stdout, progress on stderr.
Separate measurements: --filter-build N (the dedupe filter's start-up build from N stored keys),
--plan-cycle N (planning a full push cycle of N delta and N absolute streams, nothing new),
--ledger-insert [UNITS] [--without PROJECTION]… [--last-before] (the engine's CPU for UNITS ledger
INSERTs of 25,000 rows and their final merge, per projection), --alert-cycle [STREAMS] (one alert
cycle's read as the month fills up: every stream changed, 5 then 25 days of history).`;

export function parseOptions(argv: readonly string[]): BenchOptions {
  const quick = argv.includes('--quick');
  const o = {
    quick,
    events: quick ? 100_000 : 1_000_000,
    customers: quick ? 1_000 : 10_000,
    tenants: 1,
    partitions: 8,
    duplicateRate: 0.05,
    lateRate: 0.01,
    seed: 42,
    rate: 20_000,
    latencySeconds: quick ? 10 : 30,
    keep: argv.includes('--keep'),
    broker: 'dev' as 'dev' | 'kafka',
  };
  const numeric: Record<string, keyof typeof o> = {
    '--events': 'events',
    '--customers': 'customers',
    '--tenants': 'tenants',
    '--partitions': 'partitions',
    '--duplicates': 'duplicateRate',
    '--late': 'lateRate',
    '--rate': 'rate',
    '--latency-seconds': 'latencySeconds',
    '--seed': 'seed',
  };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i]!;
    if (a === '--quick' || a === '--keep') continue;
    if (a === '--broker') {
      const b = argv[i + 1];
      if (b !== 'dev' && b !== 'kafka') throw new Error(`--broker must be dev or kafka\n${USAGE}`);
      o.broker = b;
      i += 1;
      continue;
    }
    const field = numeric[a];
    const v = Number(argv[i + 1]);
    if (!field || !Number.isFinite(v) || v < 0) throw new Error(`bad argument ${a} ${argv[i + 1] ?? ''}\n${USAGE}`);
    (o as Record<string, unknown>)[field] = v;
    i += 1;
  }
  if (o.events < 1 || o.customers < 1 || o.tenants < 1 || o.partitions < 1) throw new Error(`events, customers, tenants and partitions must be ≥ 1\n${USAGE}`);
  return o;
}
