import fs from 'node:fs';
import type { Command } from 'commander';
import { createEncoderFromConfig } from '../../adapters/avro/from-config';
import { createKafka, requireReachableBrokers } from '../../adapters/kafka/kafka';
import { BACKFILL_HEADER, createPublisher, type Publisher } from '../../adapters/kafka/publisher';
import { backfillWarnings, createBackfillAgeReport } from '../../domain/backfill-age';
import { publishNdjson } from '../../pipeline/publish-ndjson';
import { MeterlineError } from '../../runtime/errors';
import { createContext } from '../context';
import { withExamples } from '../help';
import { fileProgressBar, rejectionLines } from './publish';

const DAY_MS = 86_400_000;

export function registerBackfill(program: Command): void {
  const command = program
    .command('backfill')
    .description(
      'publish historical NDJSON usage events to the usage topic; they are counted even in windows already final, ' +
        'and events older than the dedupe window or than Stripe’s 35 days are reported',
    )
    .argument('<file>', 'NDJSON file of usage events')
    .option('-t, --tenant <tenant>', 'tenant for events that name none; events naming another tenant are rejected')
    .option('--check', 'read and validate the file and report ages, publish nothing')
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: { tenant?: string; check?: boolean; json?: boolean }) => {
      if (!fs.existsSync(file)) throw new MeterlineError('bad_argument', `no such file: ${file}`);
      const { config, logger } = createContext();
      const now = Date.now();
      const ages = createBackfillAgeReport(now, config.ingest.dedupeWindowDays * DAY_MS);
      let publisher: Publisher;
      if (opts.check) {
        publisher = { publish: async () => undefined, close: async () => undefined };
      } else {
        const kafka = createKafka(await requireReachableBrokers(config), { clientId: `${config.kafka.clientId}-backfill`, logger });
        publisher = await createPublisher({ kafka, topic: config.kafka.topic, encoder: createEncoderFromConfig(config), headers: { [BACKFILL_HEADER]: '1' } });
      }
      const totalBytes = fs.statSync(file).size;
      const bar = fileProgressBar(totalBytes);
      let summary;
      try {
        summary = await publishNdjson(fs.createReadStream(file), publisher, {
          lineOptions: () => ({ now: Date.now(), maxFutureSkewMs: config.ingest.maxFutureSkewMs, tenant: opts.tenant }),
          inspect: (event, line) => ages.add(event.timestamp, line),
          onProgress: (p) => bar?.update(p),
        });
      } finally {
        bar?.stop();
        await publisher.close();
      }
      const report = ages.report();
      const warnings = backfillWarnings(report, config.ingest.dedupeWindowDays);
      const result = { ...summary, valid: summary.published, published: opts.check ? 0 : summary.published, checked: opts.check === true, ages: report, warnings };
      if (opts.json || !process.stdout.isTTY) {
        process.stdout.write(JSON.stringify(result) + '\n');
      } else {
        const headline = `${opts.check ? 'checked (nothing published)' : 'published'} ${summary.published} events, rejected ${summary.rejected} (of ${summary.lines} lines)`;
        process.stdout.write([headline, ...rejectionLines(summary)].join('\n') + '\n');
      }
      // Warnings go to stderr as well, so they are seen even when stdout is piped to a file.
      for (const w of warnings) process.stderr.write(w + '\n');
      process.exitCode = summary.rejected > 0 ? 1 : 0;
    });
  withExamples(command, [
    ['check a file first: validity and ages, nothing published', 'meterline backfill --check october.ndjson'],
    ['then publish it', 'meterline backfill october.ndjson'],
  ]);
}
