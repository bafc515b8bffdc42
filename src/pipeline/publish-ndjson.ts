import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { parseEventLine, type LineOptions } from '../domain/ndjson';
import type { UsageEvent } from '../domain/usage-event';
import type { Publisher } from '../adapters/kafka/publisher';

export interface RejectedLine {
  readonly line: number;
  readonly reason: string;
}

export interface PublishSummary {
  readonly lines: number;
  readonly published: number;
  readonly rejected: number;
  /** The first `maxRejectedListed` rejections, in line order. */
  readonly rejections: RejectedLine[];
}

export interface PublishNdjsonOptions {
  readonly lineOptions: () => LineOptions;
  readonly batchSize?: number;
  readonly maxRejectedListed?: number;
  readonly onProgress?: (p: { bytesRead: number; published: number; rejected: number }) => void;
  /** Sees every valid event with its line number before it is published. */
  readonly inspect?: (event: UsageEvent, line: number) => void;
}

/**
 * Reads NDJSON events, publishes the valid ones in batches and collects the invalid ones
 * with their line numbers. A bad line never stops the good lines around it. `published`
 * counts only acknowledged events: if Kafka fails, the error propagates with `summarySoFar`.
 */
export async function publishNdjson(input: Readable, publisher: Publisher, opts: PublishNdjsonOptions): Promise<PublishSummary> {
  const batchSize = opts.batchSize ?? 1000;
  const maxListed = opts.maxRejectedListed ?? 1000;
  const rejections: RejectedLine[] = [];
  let rejected = 0;
  let published = 0;
  let lineNo = 0;
  let bytesRead = 0;
  let batch: UsageEvent[] = [];

  const flush = async () => {
    if (batch.length === 0) return;
    const sending = batch;
    batch = [];
    try {
      await publisher.publish(sending);
    } catch (err) {
      throw Object.assign(err instanceof Error ? err : new Error(String(err)), {
        summarySoFar: { lines: lineNo, published, rejected, rejections },
      });
    }
    published += sending.length;
    opts.onProgress?.({ bytesRead, published, rejected });
  };

  const lines = readline.createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    lineNo += 1;
    bytesRead += Buffer.byteLength(line) + 1;
    if (line.trim() === '') continue;
    const result = parseEventLine(line, opts.lineOptions());
    if (result.ok) {
      opts.inspect?.(result.event, lineNo);
      batch.push(result.event);
      if (batch.length >= batchSize) await flush();
    } else {
      rejected += 1;
      if (rejections.length < maxListed) rejections.push({ line: lineNo, reason: result.reason });
    }
  }
  await flush();
  return { lines: lineNo, published, rejected, rejections };
}
