import { randomBytes } from 'node:crypto';
import os from 'node:os';

/**
 * Names one running worker (host, process, a random tag so a restarted process is another
 * worker). Stored with the rows it ingests (`usage_events.ingested_by`): its dedupe filter
 * learns every key stored by anyone else. Never empty: '' is every other writer.
 */
export function newWorkerIdentity(): string {
  return `${os.hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}
