import { once } from 'node:events';
import type { Writable } from 'node:stream';

/** How many lines go into one write: large enough to be cheap, small enough to keep memory flat. */
const LINES_PER_WRITE = 5_000;

/**
 * Writes `lines` (each followed by a newline) to `out`, waiting whenever the reader is behind, so
 * a large listing never queues whole in memory, and a reader that goes away (EPIPE, see
 * bin/meterline) stops the command at the next wait instead of after it produced everything.
 */
export async function writeLines(out: Writable, lines: Iterable<string>): Promise<void> {
  let chunk: string[] = [];
  for (const line of lines) {
    chunk.push(line);
    if (chunk.length === LINES_PER_WRITE) {
      await write(out, chunk.join('\n') + '\n');
      chunk = [];
    }
  }
  if (chunk.length > 0) await write(out, chunk.join('\n') + '\n');
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}
