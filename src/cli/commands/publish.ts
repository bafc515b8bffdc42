import fs from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type { Command } from 'commander';
import { createKafka, requireReachableBrokers } from '../../adapters/kafka/kafka';
import { createPublisher } from '../../adapters/kafka/publisher';
import { createEncoderFromConfig } from '../../adapters/avro/from-config';
import { publishNdjson, type PublishSummary } from '../../pipeline/publish-ndjson';
import { createContext } from '../context';
import { withExamples } from '../help';

export function registerPublish(program: Command): void {
  const command = program
    .command('publish')
    .description('validate NDJSON usage events and publish them to the usage topic (waits for acks)')
    .option('-f, --file <path>', 'NDJSON file (default: standard input)')
    .option('-t, --tenant <tenant>', 'tenant for events that name none; events naming another tenant are rejected')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { file?: string; tenant?: string; json?: boolean }) => {
      const { config, logger } = createContext();
      const input = opts.file ? fs.createReadStream(opts.file) : process.stdin;
      const totalBytes = opts.file ? fs.statSync(opts.file).size : 0;
      const kafka = createKafka(await requireReachableBrokers(config), { clientId: `${config.kafka.clientId}-publish`, logger });
      const publisher = await createPublisher({ kafka, topic: config.kafka.topic, encoder: createEncoderFromConfig(config) });
      const bar = opts.file ? fileProgressBar(totalBytes) : undefined;
      let summary: PublishSummary;
      try {
        summary = await publishNdjson(input, publisher, {
          lineOptions: () => ({ now: Date.now(), maxFutureSkewMs: config.ingest.maxFutureSkewMs, tenant: opts.tenant }),
          onProgress: (p) => bar?.update(p),
        });
      } finally {
        bar?.stop();
        await publisher.close();
      }
      printSummary(summary, opts.json === true);
      process.exitCode = summary.rejected > 0 ? 1 : 0;
    });
  withExamples(command, [
    ['publish a file of events (one JSON object per line)', 'meterline publish -f events.ndjson'],
    ['1000 sample events, 10 % of them copies, from standard input', 'meterline sample -n 1000 --duplicates 0.1 | meterline publish'],
    ['events without a tenant field belong to acme; a summary for scripts', 'meterline publish -f events.ndjson -t acme --json'],
  ]);
}

function printSummary(s: PublishSummary, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify(s) + '\n');
    return;
  }
  process.stdout.write([`published ${s.published}, rejected ${s.rejected} (of ${s.lines} lines)`, ...rejectionLines(s)].join('\n') + '\n');
}

/** The rejected lines a summary lists, and how many more it left out. */
export function rejectionLines(s: PublishSummary): string[] {
  const out = s.rejections.map((r) => `  line ${r.line}: ${r.reason}`);
  if (s.rejected > s.rejections.length) out.push(`  … and ${s.rejected - s.rejections.length} more`);
  return out;
}

/** A progress bar over a file's bytes, on a terminal only (stderr); undefined otherwise. */
export function fileProgressBar(totalBytes: number): { update(p: { bytesRead: number; published: number; rejected: number }): void; stop(): void } | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new SingleBar({ format: '{bar} {percentage}% | {published} published, {rejected} rejected | ETA {eta}s', stream: process.stderr }, Presets.shades_classic);
  bar.start(totalBytes, 0, { published: 0, rejected: 0 });
  return {
    update: (p) => bar.update(Math.min(p.bytesRead, totalBytes), { published: p.published, rejected: p.rejected }),
    stop: () => bar.stop(),
  };
}
