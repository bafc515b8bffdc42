import os from 'node:os';
import { createLedgerKeySource } from '../src/adapters/clickhouse/ledger-keys';
import { encodeRows, USAGE_EVENTS } from '../src/adapters/clickhouse/ledger-rows';
import { insertTsv } from '../src/adapters/clickhouse/tsv-insert';
import { dedupeKey, type Candidate } from '../src/domain/ingest-decision';
import { decideLateness } from '../src/domain/lateness';
import { parseMeterCatalog } from '../src/domain/meters';
import { startDedupeFilter } from '../src/pipeline/dedupe-filter-sync';
import { silentLogger } from '../src/runtime/logger';
import { withScratchLedger } from './scratch-ledger';

const DAY = 86_400_000;
const CHUNK = 100_000;
/** The fill only needs rows shaped like the ledger's; hashing each body would only slow it down. */
const BODY_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * `npm run bench -- --filter-build N`: stores N keys (ids shaped like the benchmark's, event
 * times spread over the dedupe window) in a fresh embedded ledger, then times the worker's
 * start-up build of the dedupe filter from it. Prints one JSON line.
 */
export function measureFilterBuild(keys: number): Promise<number> {
  return withScratchLedger('filter-build', async ({ ch, db, config }) => {
    const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'count' }] });
    if (!parsed.ok) throw new Error('bad catalog');
    const meter = parsed.catalog.get('api_calls')!;
    const now = Date.now();
    const fillStart = performance.now();
    for (let start = 0; start < keys; start += CHUNK) {
      const rows = [];
      for (let i = start; i < Math.min(keys, start + CHUNK); i += 1) {
        const event = { id: `evt-${i.toString(36)}-5c1f2b7a9d3e4f60a1b2c3d4e5f6a7b8c9d0e1f2`, tenant: `tenant-${i % 3}`, customer: `cust-${i % 10_000}`, meter: 'api_calls', value: '1', timestamp: now - (i % 34) * DAY - (i % 86_400) * 1000, properties: {}, source: null };
        const candidate: Candidate = { ref: { topic: 'usage.events', partition: i % 8, offset: String(i) }, event, meter, bodyHash: BODY_HASH, key: dedupeKey(event.tenant, event.id) };
        rows.push({ event: { candidate, lateness: decideLateness(event.timestamp, meter, null) }, ingestedAt: now, ingestedBy: '' });
      }
      await insertTsv(ch, `${db}.usage_events`, USAGE_EVENTS.columns, encodeRows(USAGE_EVENTS, rows));
    }
    const fillSeconds = (performance.now() - fillStart) / 1000;
    const heapBefore = process.memoryUsage().heapUsed;
    const buildStart = performance.now();
    const synced = await startDedupeFilter({
      options: { capacity: config.ingest.dedupeFilter.keys, bitsPerKey: config.ingest.dedupeFilter.bitsPerKey, dedupeWindowMs: 35 * DAY, maxFutureSkewMs: 300_000 },
      keys: createLedgerKeySource(ch, db),
      ingestedBy: 'filter-build',
      clock: Date.now,
      logger: silentLogger(),
    });
    const buildSeconds = (performance.now() - buildStart) / 1000;
    const stats = synced.filter.stats();
    process.stdout.write(
      `${JSON.stringify({ keys, fillSeconds, buildSeconds, keysPerSecond: Math.round(keys / buildSeconds), filterBytes: stats.bytes, filterKeys: stats.keys, heapGrowthMiB: Math.round((process.memoryUsage().heapUsed - heapBefore) / 1048576), falsePositiveRate: stats.falsePositiveRate, loadavg: os.loadavg() })}\n`,
    );
    return 0;
  });
}
