/**
 * The pusher takes its own worker's changes from the in-process feed (change-feed.ts). A full
 * cycle reads every stream, so it drops the changes it covers: all of them at a term's start
 * (whole history), and at a periodic full scan those in windows it reads afresh. A change in an
 * older window (a backfill) stays for the next scoped cycle, which reads that stream whole.
 * Left in the feed, covered changes were re-planned 1,000 a cycle after a backlog, and the few
 * streams that still needed a push waited behind them (BENCHMARKS.md, ninth session).
 * The same holds for other workers' changes (read from the record at the full scan, since the
 * cursor) and for streams a scoped cycle deferred unread.
 */
import type { PushRecord, PushStore } from '../../src/adapters/clickhouse/push-store';
import type { ChangedStream, StreamStore } from '../../src/adapters/clickhouse/stream-store';
import { streamKey } from '../../src/domain/keys';
import { parseMeterCatalog } from '../../src/domain/meters';
import { createChangeFeed } from '../../src/pipeline/change-feed';
import { createPusher } from '../../src/pipeline/pusher';
import { silentLogger } from '../../src/runtime/logger';

const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'tokens' } }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const catalog = parsed.catalog;
const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-20T12:00:00Z');
/** The store's split: windows from here on are read afresh by every read. */
const KEPT_BEFORE = NOW - 36 * HOUR;

const change = (customer: string, windowStart: number) => {
  const s = { tenant: 't', customer, meter: 'tokens', oldestWindowStart: windowStart, newestWindowStart: windowStart };
  return { key: streamKey(s), ...s };
};

/** `record`: other workers' changes in the change record, each with the instant it was stamped. */
function harness(opts: { record?: { change: ChangedStream; at: number }[]; maxInFlight?: number } = {}) {
  const scopes: (string[] | 'all')[] = [];
  const streams: StreamStore = {
    deltaStreams: async (_meters, scope) => {
      scopes.push(scope === undefined ? 'all' : (scope as readonly ChangedStream[]).map((s) => s.customer).sort());
      return [];
    },
    absoluteStreams: async () => [],
    forget: () => undefined,
    keptBefore: () => KEPT_BEFORE,
    freshFrom: () => KEPT_BEFORE,
    changedStreams: async (since) => (opts.record ?? []).filter((r) => r.at >= since).map((r) => r.change),
    customerMappings: async () => new Map(),
  };
  const pushes: PushStore = { record: async () => undefined, list: async () => [] as PushRecord[], pushedDeltas: async () => new Map(), lastAbsolutes: async () => new Map() };
  const feed = createChangeFeed('worker-a');
  let now = NOW;
  const pusher = createPusher({
    streams,
    pushes,
    sink: { shadow: true, send: async () => ({ kind: 'shadow' }), close: async () => undefined },
    meters: () => catalog,
    clock: () => now,
    logger: silentLogger(),
    rateLimit: async () => 0,
    fullScanEveryMs: 10 * 60_000,
    maxInFlight: opts.maxInFlight,
    ownChanges: feed.subscribe(),
  });
  return { pusher, feed, scopes, advance: (ms: number) => (now += ms), now: () => now };
}

describe("the pusher's own changes across full cycles", () => {
  it('drops every change a term-start cycle covered (it reads the whole history)', async () => {
    const h = harness();
    h.feed.publish([change('recent', NOW - HOUR), change('backfill', NOW - 72 * HOUR)]);
    await h.pusher.cycle(); // the term's first cycle: full, from the whole history
    h.advance(1_000);
    await h.pusher.cycle();
    expect(h.scopes).toEqual(['all']); // the scoped cycle had nothing to read
  });

  it('keeps, through a periodic full scan, only the changes in windows it does not read afresh', async () => {
    const h = harness();
    await h.pusher.cycle(); // the term's first cycle
    h.feed.publish([change('recent', NOW - HOUR), change('backfill', NOW - 72 * HOUR)]);
    h.advance(10 * 60_000); // the next cycle is a periodic full scan
    await h.pusher.cycle();
    h.advance(1_000);
    await h.pusher.cycle();
    expect(h.scopes).toEqual(['all', 'all', ['backfill']]);
  });

  it('takes the changes published since into its next scoped cycle', async () => {
    const h = harness();
    await h.pusher.cycle();
    h.feed.publish([change('c1', NOW - HOUR)]);
    h.advance(1_000);
    await h.pusher.cycle();
    h.advance(1_000);
    await h.pusher.cycle();
    expect(h.scopes).toEqual(['all', ['c1']]);
  });
});

describe('the pusher after a backlog (cycles that only serve deferred streams take no changes)', () => {
  it('does not plan again the streams those cycles read after their changes', async () => {
    const h = harness({ maxInFlight: 2 });
    await h.pusher.cycle(); // the term's first cycle
    h.feed.publish(['c1', 'c2', 'c3', 'c4'].map((c) => change(c, NOW - HOUR)));
    h.advance(1_000);
    await h.pusher.cycle(); // room for two: c1 and c2 read, c3 and c4 deferred
    // Ingest changes all four again, in an earlier window (event times are not in order), and c4
    // also a window older than the store's recent ones (a backfill). The next cycle's deferred
    // streams fill its budget, so it takes no changes: it reads c3 and c4 (after their second
    // change: c3's is covered, c4's backfill is not) and nothing else.
    h.feed.publish([...['c1', 'c2', 'c3'].map((c) => change(c, NOW - 2 * HOUR)), change('c4', NOW - 72 * HOUR)]);
    h.advance(1_000);
    await h.pusher.cycle();
    // Then it takes the changes: c1 and c2 changed after their read, c4 in a window not read afresh.
    for (let i = 0; i < 3; i += 1) {
      h.advance(1_000);
      await h.pusher.cycle();
    }
    expect(h.scopes).toEqual(['all', ['c1', 'c2'], ['c3', 'c4'], ['c1', 'c2'], ['c4']]);
  });
});

describe('changes in older windows across a periodic full scan (it reads recent windows only)', () => {
  it("keeps another worker's change recorded since the cursor, however far back it stands, for the next scoped cycle", async () => {
    const record: { change: ChangedStream; at: number }[] = [];
    const h = harness({ record });
    await h.pusher.cycle(); // the term's first cycle; the cursor stands here
    h.advance(1_000);
    record.push({ change: change('backfill', NOW - 72 * HOUR), at: h.now() }, { change: change('recent', NOW - HOUR), at: h.now() });
    // No cycle reads changes for ten minutes (in production: cycles that only serve deferred
    // pushes); then the periodic full scan moves the cursor past both changes.
    h.advance(10 * 60_000);
    await h.pusher.cycle();
    h.advance(1_000);
    await h.pusher.cycle();
    expect(h.scopes).toEqual(['all', 'all', ['backfill']]);
  });

  it('keeps a change in an older window that a scoped cycle read but deferred (over the in-flight budget)', async () => {
    const h = harness({ maxInFlight: 1 });
    await h.pusher.cycle();
    h.feed.publish([change('recent', NOW - HOUR), change('backfill', NOW - 72 * HOUR)]);
    h.advance(1_000);
    await h.pusher.cycle(); // room for one stream: recent is planned, backfill deferred
    h.advance(10 * 60_000);
    await h.pusher.cycle(); // the periodic full scan
    h.advance(1_000);
    await h.pusher.cycle();
    expect(h.scopes).toEqual(['all', ['recent'], 'all', ['backfill']]);
  });
});
