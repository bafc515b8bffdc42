/**
 * A full push cycle plans every stream. Planning is synchronous work per stream; over tens of
 * thousands of streams it held the event loop for 0.2–0.5 s, during which the ingest worker in
 * the same process could not decode, decide or commit. The pusher now lets other work run
 * between every thousand plans. The stores here answer at once (microtasks only), so any turn of
 * the event loop observed during the cycle is one the pusher gave away.
 */
import type { PushStore, PushRecord } from '../../src/adapters/clickhouse/push-store';
import type { DeltaStream, StreamStore } from '../../src/adapters/clickhouse/stream-store';
import { customerKey } from '../../src/domain/keys';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { PlannedPush } from '../../src/domain/push-plan';
import { createPusher } from '../../src/pipeline/pusher';
import { silentLogger } from '../../src/runtime/logger';

const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'tokens' } }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const catalog = parsed.catalog;
const HOUR = 3_600_000;
const NOW = Date.parse('2026-11-20T12:00:00Z');
const STREAMS = 5_000;

function stores() {
  const streams: DeltaStream[] = Array.from({ length: STREAMS }, (_, i) => ({
    tenant: 't', customer: `c${i}`, meter: 'tokens', total: '3', windowStart: NOW - 2 * HOUR, windowEnd: NOW - HOUR,
  }));
  const streamStore: StreamStore = {
    deltaStreams: async () => streams,
    absoluteStreams: async () => [],
    forget: () => undefined,
    keptBefore: () => 0,
    freshFrom: () => 0,
    changedStreams: async () => [],
    customerMappings: async () => new Map(streams.map((s) => [customerKey(s), `cus_${s.customer}`])),
  };
  const recorded: { push: PlannedPush; status: string }[] = [];
  const pushStore: PushStore = {
    record: async (push, status) => void recorded.push({ push, status }),
    list: async () => [] as PushRecord[],
    pushedDeltas: async () => new Map(),
    lastAbsolutes: async () => new Map(),
  };
  return { streamStore, pushStore, recorded };
}

describe('a full push cycle over many streams', () => {
  it('lets other work run while it plans, and still plans every stream once', async () => {
    const { streamStore, pushStore, recorded } = stores();
    const sent: string[] = [];
    const pusher = createPusher({
      streams: streamStore,
      pushes: pushStore,
      sink: { shadow: true, send: async (p) => (sent.push(p.customer), { kind: 'shadow' }), close: async () => undefined },
      meters: () => catalog,
      clock: () => NOW,
      logger: silentLogger(),
      rateLimit: async () => 0,
      maxInFlight: STREAMS,
    });
    let turns = 0;
    let counting = true;
    const countTurns = () => {
      if (!counting) return;
      turns += 1;
      setImmediate(countTurns);
    };
    setImmediate(countTurns);
    const summary = await pusher.cycle();
    counting = false;
    await pusher.drain();
    // One turn per thousand plans at least (the first turn may come before the cycle begins).
    expect(turns).toBeGreaterThanOrEqual(STREAMS / 1_000);
    expect(summary.started).toBe(STREAMS);
    expect(new Set(sent).size).toBe(STREAMS);
    expect(sent).toHaveLength(STREAMS);
    expect(recorded.filter((r) => r.status === 'shadow')).toHaveLength(STREAMS);
  });
});
