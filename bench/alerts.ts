import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { decodeAlert } from '../src/adapters/alerts/alert-codec';
import type { Publisher } from '../src/adapters/kafka/publisher';
import { percentile } from './workload';

/**
 * Alert latency: from the acknowledged publication of the usage event that crosses an allotment
 * to the alert's record on the alerts topic (its Kafka timestamp, set by the worker's producer on
 * the same machine's clock). Each crossing is a fresh customer whose single event reaches 100 % of
 * the allotment, so crossings are independent; run it while the throughput load runs to measure
 * the latency under load.
 *
 * The worker must run with ALLOTMENTS_FILE holding `alertBenchAllotments(...)` (a meter-wide
 * allotment of the tenant: every bench customer gets it).
 */
export interface AlertLatencyOptions {
  readonly kafka: Kafka;
  /** Publishes to the worker's usage topic. */
  readonly publisher: Publisher;
  readonly alertsTopic: string;
  readonly tenant: string;
  readonly meter: string;
  /** The allotment's limit (decimal text); each crossing event carries exactly this value. */
  readonly limit: string;
  readonly crossings: number;
  /** Pause between two crossings. */
  readonly spacingMs?: number;
  /** How long to wait for the last alert (and for the warm-up alert). */
  readonly timeoutMs?: number;
  /**
   * Crossings sent first and waited for, not measured (default 1): a worker alerts only once it
   * owns partition 0 and its 5 s grace has passed, which the first crossing after a start would measure.
   */
  readonly warmupCrossings?: number;
}

export interface AlertLatencyResult {
  readonly alertCrossings: number;
  readonly alertsReceived: number;
  readonly alertLatencyP50Ms: number | null;
  readonly alertLatencyP99Ms: number | null;
  readonly alertLatencyMaxMs: number | null;
}

/** The allotments file (YAML) the worker needs for measureAlertLatency. */
export function alertBenchAllotments(tenant: string, meter: string, limit: string): string {
  return ['allotments:', `  - { tenant: ${JSON.stringify(tenant)}, meter: ${JSON.stringify(meter)}, limit: ${JSON.stringify(limit)}, thresholds: [100] }`, ''].join('\n');
}

export async function measureAlertLatency(o: AlertLatencyOptions): Promise<AlertLatencyResult> {
  const run = randomUUID().slice(0, 8);
  const publishedAt = new Map<string, number>(); // customer → ack time
  const latencies: number[] = [];
  const seen = new Set<string>();
  const consumer = o.kafka.consumer({ groupId: `bench-alerts-${run}`, sessionTimeout: 10_000, heartbeatInterval: 1_000, maxWaitTimeInMs: 50 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [o.alertsTopic], fromBeginning: false });
    let joined!: () => void;
    const ready = new Promise<void>((resolve) => (joined = resolve));
    consumer.on(consumer.events.GROUP_JOIN, () => joined());
    await consumer.run({
      eachMessage: async ({ message }) => {
        const alert = decodeAlert(message.value!);
        const sent = publishedAt.get(alert.customer);
        if (alert.tenant !== o.tenant || sent === undefined || seen.has(alert.customer)) return;
        seen.add(alert.customer);
        latencies.push(Math.max(0, Number(message.timestamp) - sent));
      },
    });
    await ready;
    const cross = async (customer: string) => {
      await o.publisher.publish([{ id: `${customer}-1`, tenant: o.tenant, customer, meter: o.meter, value: o.limit, timestamp: Date.now(), properties: {}, source: null }]);
      publishedAt.set(customer, Date.now());
    };
    const waitForAlerts = async (n: number) => {
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      while (seen.size < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    };
    const warmup = o.warmupCrossings ?? 1;
    for (let i = 0; i < warmup; i += 1) await cross(`alert-bench-${run}-warmup-${i}`);
    await waitForAlerts(warmup);
    if (seen.size < warmup) throw new Error(`no alert for the warm-up crossings within ${o.timeoutMs ?? 30_000} ms: is the worker running with alertBenchAllotments(...) as ALLOTMENTS_FILE?`);
    latencies.length = 0;
    for (let i = 0; i < o.crossings; i += 1) {
      await cross(`alert-bench-${run}-${i}`);
      await new Promise((r) => setTimeout(r, o.spacingMs ?? 250));
    }
    await waitForAlerts(warmup + o.crossings);
  } finally {
    await consumer.disconnect();
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    alertCrossings: o.crossings,
    alertsReceived: sorted.length,
    alertLatencyP50Ms: percentile(sorted, 0.5),
    alertLatencyP99Ms: percentile(sorted, 0.99),
    alertLatencyMaxMs: sorted.length > 0 ? sorted[sorted.length - 1]! : null,
  };
}
