import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { LedgerStore } from '../ports/ledger';
import type { ReplayRun, ReplayStore } from '../adapters/clickhouse/replay-store';
import type { WatermarkOptions } from '../domain/watermarks';
import type { Logger } from '../runtime/logger';
import { createDryRunLedger, type CounterMove } from './dry-run-ledger';
import type { EventTimeRange, IngestDeps } from './ingest-batch';
import { emptyTotals, startIngestWorker, type IngestTotals, type IngestWorkerOptions } from './ingest-worker';

export interface ReplayProgress {
  /** Messages of the run's offset range processed so far (this invocation and earlier ones). */
  readonly done: number;
  readonly total: number;
  readonly totals: Readonly<IngestTotals>;
}

export interface ReplaySummary extends Omit<IngestTotals, 'consumed' | 'units'> {
  readonly runId: string;
  readonly groupId: string;
  readonly dryRun: boolean;
  /** An interrupted run over the same topic and range was picked up where it stopped. */
  readonly resumed: boolean;
  /** Every message up to the end offsets was processed; false when interrupted (resumable). */
  readonly complete: boolean;
  readonly range: { from: string | null; to: string | null };
  /** Messages in the run's offset range, and how many of them this invocation processed. */
  readonly total: number;
  readonly processed: number;
  /** Dry run only: how many counters would move, and the first of them. */
  readonly counters?: { readonly moved: number; readonly listed: readonly CounterMove[] };
  readonly durationMs: number;
}

export interface ReplayOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Consumer groups are named `<groupPrefix>-replay-<runId>`, never the live worker's group. */
  readonly groupPrefix: string;
  readonly range: EventTimeRange;
  readonly dryRun: boolean;
  /** Start a new run even if an interrupted one over the same range exists. */
  readonly restart?: boolean;
  readonly runs: ReplayStore;
  readonly ledger: LedgerStore;
  readonly deps: Omit<IngestDeps, 'ledger' | 'watermark' | 'eventTimeRange' | 'deadLetters'>;
  readonly watermarks: WatermarkOptions;
  readonly consumer?: IngestWorkerOptions['consumer'];
  readonly logger: Logger;
  readonly onProgress?: (p: ReplayProgress) => void;
  /** Aborting stops after the in-flight batch (stored and committed): the run stays resumable. */
  readonly signal?: AbortSignal;
  /** How many counter moves a dry run lists (all are counted). */
  readonly listLimit?: number;
}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

/**
 * Re-reads the topic, up to the end offsets it had when the run started, through the very same
 * ingest path as the live worker, in a consumer group of its own. Stored events are found by the
 * ledger lookup (duplicates or redelivered), so a replay never counts anything twice; missing
 * events are stored (their windows' totals follow, and the change record tells the live
 * worker's pusher), and the pusher then sends only the differences. Dead letters are not re-sent to the DLQ topic (they are there already);
 * their rejected_events rows, keyed by source offset, are restored if missing.
 *
 * Progress lives in the run's consumer group (offsets committed after each stored batch, as
 * live), and the plan (end offsets, range) in replay_runs: an interrupted replay resumes from
 * its committed offsets. A dry run commits nothing and writes nothing.
 */
export async function replayTopic(opts: ReplayOptions): Promise<ReplaySummary> {
  const started = Date.now();
  const log = opts.logger.child({ module: 'replay' });
  const admin = opts.kafka.admin();
  await admin.connect();
  let run: ReplayRun;
  let resumed = false;
  // Per partition: the first retained offset, and where this invocation reads next.
  const low = new Map<number, bigint>();
  const position = new Map<number, bigint>();
  try {
    const offsets = await admin.fetchTopicOffsets(opts.topic);
    const previous = opts.dryRun || opts.restart ? null : await opts.runs.findUnfinished(opts.topic, opts.range.from, opts.range.to);
    if (previous) {
      run = previous;
      resumed = true;
    } else {
      const runId = `${new Date(started).toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(4).toString('hex')}`;
      run = {
        runId,
        topic: opts.topic,
        groupId: `${opts.groupPrefix}-replay-${opts.dryRun ? 'dry-' : ''}${runId}`,
        rangeFrom: opts.range.from,
        rangeTo: opts.range.to,
        endOffsets: new Map(offsets.map((o) => [o.partition, BigInt(o.high)])),
        status: 'running',
        startedAt: started,
      };
      if (!opts.dryRun) await opts.runs.save(run, started);
    }
    // Where this invocation starts: the run's committed offsets, else the partition's start.
    const committed = resumed ? await admin.fetchOffsets({ groupId: run.groupId, topics: [opts.topic] }) : [];
    const committedOf = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
    for (const o of offsets) {
      const c = committedOf.get(o.partition) ?? -1n;
      low.set(o.partition, BigInt(o.low));
      position.set(o.partition, c >= 0n ? c : BigInt(o.low));
    }
  } finally {
    await admin.disconnect();
  }

  // Progress counts offsets, from each partition's first retained offset to the run's end.
  const span = (p: number, end: bigint) => {
    const first = low.get(p) ?? 0n;
    const pos = position.get(p) ?? first;
    const clamp = (x: bigint) => (x < first ? first : x > end ? end : x);
    return { all: Number(clamp(end) - first), done: Number(clamp(pos) - first) };
  };
  const done = () => [...run.endOffsets].reduce((n, [p, end]) => n + span(p, end).done, 0);
  const total = [...run.endOffsets].reduce((n, [p, end]) => n + span(p, end).all, 0);
  const remaining = () => [...run.endOffsets].filter(([p, end]) => (position.get(p) ?? 0n) < end).length;
  const doneBefore = done();
  log.info({ runId: run.runId, groupId: run.groupId, resumed, total, alreadyDone: doneBefore, range: { from: iso(run.rangeFrom), to: iso(run.rangeTo) } }, 'replay starting');

  const dryLedger = opts.dryRun ? createDryRunLedger(opts.ledger) : null;
  let finished = remaining() === 0;
  let worker: Awaited<ReturnType<typeof startIngestWorker>> | null = null;
  if (!finished) {
    let signalDone: () => void = () => undefined;
    const allDone = new Promise<void>((resolve) => (signalDone = resolve));
    worker = await startIngestWorker({
      kafka: opts.kafka,
      topic: opts.topic,
      groupId: run.groupId,
      logger: opts.logger,
      watermarks: opts.watermarks,
      consumer: opts.consumer,
      replay: { endOffsets: run.endOffsets, commit: !opts.dryRun },
      deps: { ...opts.deps, ledger: dryLedger ?? opts.ledger, eventTimeRange: opts.range },
    });
    const w = worker;
    w.onUnit((_outcome, positions) => {
      for (const [partition, { next }] of positions) position.set(partition, BigInt(next));
      opts.onProgress?.({ done: done(), total, totals: w.totals });
      if (remaining() === 0) signalDone();
    });
    const aborted = new Promise<void>((resolve) => {
      if (opts.signal?.aborted) resolve();
      opts.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([allDone, aborted]);
    await w.stop();
    finished = remaining() === 0;
  }

  const { consumed, units: _units, ...counts } = worker?.totals ?? emptyTotals();
  const moves = dryLedger?.counterMoves();
  const summary: ReplaySummary = {
    runId: run.runId,
    groupId: run.groupId,
    dryRun: opts.dryRun,
    resumed,
    complete: finished,
    range: { from: iso(run.rangeFrom), to: iso(run.rangeTo) },
    total,
    processed: consumed,
    ...counts,
    ...(moves ? { counters: { moved: moves.length, listed: moves.slice(0, opts.listLimit ?? 50) } } : {}),
    durationMs: Date.now() - started,
  };
  if (!opts.dryRun) await opts.runs.save({ ...run, status: finished ? 'finished' : 'running' }, Date.now(), summary);
  log.info(summary, finished ? 'replay finished' : 'replay interrupted: run it again to resume');
  return summary;
}
