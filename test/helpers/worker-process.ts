import type { ChildProcess } from 'node:child_process';
import type { Kafka } from 'kafkajs';
import type { TestBroker } from './kafka';
import type { FakeStripe } from '../fakes/stripe';
import { spawnCli } from './cli';
import { waitFor } from './wait';

/**
 * The environment of a `meterline run` child in the process-level tests: the test broker, a
 * short session timeout (a killed worker's partitions move within ~3 s), an ephemeral metrics
 * port, quiet logs. `extra` adds or overrides variables.
 */
export function workerEnv(broker: { bootstrapServers: string[] }, groupId: string, dataDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    KAFKA_BROKERS: broker.bootstrapServers.join(','),
    KAFKA_GROUP_ID: groupId,
    KAFKA_SESSION_TIMEOUT_MS: '3000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '300',
    KAFKA_MAX_WAIT_MS: '100',
    METERLINE_DATA_DIR: dataDir,
    METRICS_PORT: '0',
    LOG_LEVEL: 'error',
    ...extra,
  };
}

/** Points a worker's Stripe client at the fake Stripe. */
export function fakeStripeEnv(fake: FakeStripe): NodeJS.ProcessEnv {
  return { STRIPE_API_KEY: fake.apiKey, STRIPE_HOST: '127.0.0.1', STRIPE_PORT: String(fake.port), STRIPE_PROTOCOL: 'http' };
}

/** `meterline run --no-demo` as a child process (its output is drained; `log` receives stderr). */
export function startWorkerProcess(env: NodeJS.ProcessEnv, log?: (chunk: Buffer) => void): ChildProcess {
  const child = spawnCli(['run', '--no-demo'], { env });
  child.stdout!.on('data', () => undefined);
  child.stderr!.on('data', (d: Buffer) => log?.(d));
  return child;
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Waits until `groupId` has committed every partition of `topic` up to its current end. */
export async function waitForGroupCaughtUp(kafka: Kafka, groupId: string, topic: string, timeoutMs = 120_000): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const high = await admin.fetchTopicOffsets(topic);
    await waitFor(
      `group ${groupId} to commit every offset of ${topic}`,
      async () => {
        // A transient broker error (injected by the chaos test, say) is just "not yet".
        const fetched = await admin.fetchOffsets({ groupId, topics: [topic] }).catch(() => null);
        if (!fetched) return false;
        const committed = fetched[0]!.partitions;
        return high.every((h) => committed.find((c) => c.partition === h.partition)?.offset === h.high);
      },
      timeoutMs,
      200,
    );
  } finally {
    await admin.disconnect();
  }
}
