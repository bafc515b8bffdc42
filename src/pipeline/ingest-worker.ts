import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../runtime/logger';
import { ingestBatch, type BatchOutcome, type IngestDeps, type RawMessage } from './ingest-batch';

export interface IngestTotals {
  consumed: number;
  accepted: number;
  duplicates: number;
  conflicts: number;
  redelivered: number;
  rejected: number;
  batches: number;
}

export interface IngestWorker {
  /** Drains the in-flight batch (stored and committed), leaves the group, resolves. */
  stop(): Promise<void>;
  readonly totals: Readonly<IngestTotals>;
  /** Resolves after the next batch has been committed (for tests and progress logging). */
  onBatch(listener: (outcome: BatchOutcome, partition: number) => void): void;
}

export interface IngestWorkerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  readonly deps: IngestDeps;
  readonly logger: Logger;
  readonly consumer?: { sessionTimeout?: number; heartbeatInterval?: number; maxWaitTimeInMs?: number; maxBytesPerPartition?: number };
}

/**
 * The ingest consumer. Offsets are committed by hand, per partition, strictly after the
 * batch they cover is durable (ingestBatch resolved). kafkajs' auto-commit is off, so a crash
 * at any instant leaves committed offsets at or behind what is stored — never ahead — and the
 * re-read messages are recognised as redelivered or duplicates by the ledger lookup.
 *
 * Batches are processed one at a time (partitionsConsumedConcurrently = 1): within one worker,
 * two copies of an event in different partitions can never race past the dedupe lookup.
 */
export async function startIngestWorker(opts: IngestWorkerOptions): Promise<IngestWorker> {
  const log = opts.logger.child({ module: 'ingest' });
  const totals: IngestTotals = { consumed: 0, accepted: 0, duplicates: 0, conflicts: 0, redelivered: 0, rejected: 0, batches: 0 };
  const listeners: ((o: BatchOutcome, p: number) => void)[] = [];
  const consumer: Consumer = opts.kafka.consumer({
    groupId: opts.groupId,
    sessionTimeout: opts.consumer?.sessionTimeout ?? 30_000,
    heartbeatInterval: opts.consumer?.heartbeatInterval ?? 3_000,
    maxWaitTimeInMs: opts.consumer?.maxWaitTimeInMs ?? 250,
    maxBytesPerPartition: opts.consumer?.maxBytesPerPartition ?? 2 * 1024 * 1024,
    allowAutoTopicCreation: false,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: opts.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch: async ({ batch, heartbeat, isStale, resolveOffset }) => {
      if (batch.messages.length === 0 || isStale()) return;
      const end = opts.deps.metrics?.batchDuration.startTimer();
      const messages: RawMessage[] = batch.messages.map((m) => ({
        ref: { topic: batch.topic, partition: batch.partition, offset: m.offset },
        key: m.key,
        value: m.value,
      }));
      // 1. Store: after this, every message of the batch is durable in exactly one table.
      const outcome = await ingestBatch(messages, opts.deps);
      // 2. Only now advance: resolveOffset moves kafkajs' fetch position past the batch, and the
      //    commit (one past the last stored offset) makes it survive a restart. If the commit
      //    fails (rebalance), the next owner re-reads these messages and finds them stored.
      const last = batch.messages[batch.messages.length - 1]!.offset;
      resolveOffset(last);
      const next = (BigInt(last) + 1n).toString();
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
      opts.deps.metrics?.committedOffset.set({ partition: String(batch.partition) }, Number(next));
      end?.();
      totals.batches += 1;
      totals.consumed += outcome.consumed;
      totals.accepted += outcome.accepted;
      totals.duplicates += outcome.duplicates;
      totals.conflicts += outcome.conflicts;
      totals.redelivered += outcome.redelivered;
      totals.rejected += outcome.rejected;
      for (const l of listeners) l(outcome, batch.partition);
      await heartbeat();
    },
  });
  log.info({ topic: opts.topic, groupId: opts.groupId }, 'ingest consumer started');
  return {
    totals,
    onBatch: (l) => listeners.push(l),
    async stop() {
      // kafkajs' disconnect waits for the running eachBatch (store + commit) to finish first.
      await consumer.disconnect();
      log.info(totals, 'ingest consumer stopped');
    },
  };
}
