import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { createDecoderFromConfig } from '../../adapters/avro/from-config';
import { createLedgerStore } from '../../adapters/clickhouse/ledger-store';
import { migrate } from '../../adapters/clickhouse/migrations';
import { createReplayStore } from '../../adapters/clickhouse/replay-store';
import { createKafka, requireReachableBrokers } from '../../adapters/kafka/kafka';
import { loadMeterCatalog } from '../../adapters/meters-file';
import { replayTopic, type ReplaySummary } from '../../pipeline/replay';
import { MeterlineError } from '../../runtime/errors';
import { openClickHouse } from '../clickhouse';
import { createContext } from '../context';
import { withExamples } from '../help';
import { isoTime } from './query';

const DAY_MS = 86_400_000;

/** Exit status of a replay that was interrupted (SIGINT/SIGTERM) and can be resumed. */
export const REPLAY_INTERRUPTED_EXIT = 3;

export function registerReplay(program: Command): void {
  const command = program
    .command('replay')
    .description(
      're-read the usage topic through the ingest path in a consumer group of its own: stored events are recognised, ' +
        'missing ones are stored and counted (the worker pushes the differences); an interrupted replay resumes',
    )
    .option('--from <iso|earliest>', 'events with event time at or after this', 'earliest')
    .option('--to <iso>', 'events with event time before this (default: no bound)')
    .option('--dry-run', 'write nothing, commit nothing: report what would change')
    .option('--restart', 'start a new run even if an interrupted one over the same range exists')
    .option('--limit <n>', 'counter moves listed by a dry run', '50')
    .option('--json', 'print the summary as JSON (the default when stdout is not a terminal)')
    .action(async (opts: { from: string; to?: string; dryRun?: boolean; restart?: boolean; limit: string; json?: boolean }) => {
      const from = opts.from === 'earliest' ? null : isoTime('from', opts.from);
      const to = opts.to ? isoTime('to', opts.to) : null;
      if (from !== null && to !== null && from >= to) throw new MeterlineError('bad_argument', '--from must be before --to');
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 0) throw new MeterlineError('bad_argument', `--limit must be a whole number, got ${JSON.stringify(opts.limit)}`);
      const { config, logger } = createContext();
      const kafka = createKafka(await requireReachableBrokers(config), { clientId: `${config.kafka.clientId}-replay`, logger });
      const ch = await openClickHouse(config);
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const bar = process.stderr.isTTY
        ? new SingleBar({ format: '{bar} {percentage}% | {value}/{total} messages | {accepted} new, {duplicates} already stored | ETA {eta}s', stream: process.stderr }, Presets.shades_classic)
        : undefined;
      let barStarted = false;
      let summary: ReplaySummary;
      try {
        await migrate(ch, config.clickhouse.database);
        const meters = loadMeterCatalog(config.ingest.metersFile);
        const db = config.clickhouse.database;
        summary = await replayTopic({
          kafka,
          topic: config.kafka.topic,
          groupPrefix: config.kafka.groupId,
          range: { from, to },
          dryRun: opts.dryRun === true,
          restart: opts.restart === true,
          runs: createReplayStore(ch, db),
          ledger: createLedgerStore(ch, db, { dedupeWindowMs: config.ingest.dedupeWindowDays * DAY_MS }),
          deps: { decoder: createDecoderFromConfig(config), meters: () => meters, clock: Date.now, maxFutureSkewMs: config.ingest.maxFutureSkewMs },
          watermarks: config.aggregate,
          consumer: { sessionTimeout: config.kafka.sessionTimeoutMs, heartbeatInterval: config.kafka.heartbeatIntervalMs, maxWaitTimeInMs: config.kafka.maxWaitTimeMs },
          logger,
          signal: controller.signal,
          listLimit: limit,
          onProgress: (p) => {
            if (!bar) return;
            if (!barStarted) {
              bar.start(p.total, p.done, { accepted: 0, duplicates: 0 });
              barStarted = true;
            }
            bar.update(p.done, { accepted: p.totals.accepted, duplicates: p.totals.duplicates + p.totals.redelivered });
          },
        });
      } finally {
        if (barStarted) bar?.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await ch.close();
      }
      printSummary(summary, opts.json === true || !process.stdout.isTTY);
      if (!summary.complete) process.exitCode = REPLAY_INTERRUPTED_EXIT;
    });
  withExamples(command, [
    ['what a replay of the whole topic would change, writing nothing', 'meterline replay --dry-run'],
    ['store and count whatever November\'s events are missing (resumes if interrupted)', 'meterline replay --from 2026-11-01 --to 2026-12-01'],
  ]);
}

function printSummary(s: ReplaySummary, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(s) + '\n');
    return;
  }
  const out = [
    `${s.dryRun ? 'dry run (nothing written)' : `replay ${s.runId}`}${s.resumed ? ' (resumed)' : ''}: ${s.complete ? 'complete' : 'INTERRUPTED — run the same command again to resume'}`,
    `  range: ${s.range.from ?? 'earliest'} .. ${s.range.to ?? 'no end'} (event time)`,
    `  messages read: ${s.processed} of ${s.total} in the run`,
    `  ${s.dryRun ? 'would store' : 'stored'}: ${s.accepted} new events (${s.tooLate} of them too late to count); already stored: ${s.duplicates} duplicates, ${s.redelivered} same message, ${s.conflicts} conflicts; rejected: ${s.rejected}; outside the range: ${s.skipped}`,
  ];
  for (const [meter, m] of Object.entries(s.byMeter).sort()) {
    out.push(`    ${meter}: ${m.accepted} new, ${m.duplicates + m.redelivered} already stored, ${m.conflicts} conflicts, ${m.skipped} outside the range`);
  }
  if (s.counters) {
    out.push(`  counters that would move: ${s.counters.moved}`);
    for (const c of s.counters.listed) {
      out.push(`    ${c.tenant} / ${c.customer} / ${c.meter} @ ${new Date(c.windowStart).toISOString()}: +${c.addedEvents} events, +${c.addedValue} (${c.aggregation})`);
    }
    if (s.counters.moved > s.counters.listed.length) out.push(`    … and ${s.counters.moved - s.counters.listed.length} more (--limit)`);
  }
  process.stdout.write(out.join('\n') + '\n');
}
