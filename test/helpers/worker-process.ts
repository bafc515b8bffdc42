import type { ChildProcess } from 'node:child_process';
import type { Kafka } from 'kafkajs';
import { spawnCli } from './cli';
import { waitFor } from './wait';

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
