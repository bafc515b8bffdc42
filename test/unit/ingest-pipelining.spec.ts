import { createDecoder, createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import type { LedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import { createDedupeFilter } from '../../src/domain/dedupe-filter';
import { dedupeKey, type StoredKey } from '../../src/domain/ingest-decision';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';
import { decideBatch, storeBatch, type IngestDeps, type RawMessage } from '../../src/pipeline/ingest-batch';

const NOW = Date.UTC(2026, 10, 29, 8);
const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'sum' }] });
if (!parsed.ok) throw new Error('bad test catalog');
const meters = parsed.catalog;
const encoder = createSingleObjectEncoder();

/** A ledger held in memory whose inserts land only when the test says so (writes in flight). */
function slowLedger() {
  const rows = new Map<string, StoredKey>();
  const held: (() => void)[] = [];
  const ledger: LedgerStore = {
    lookup: async (cs) => {
      const found = new Map<string, StoredKey>();
      for (const c of cs) {
        const k = dedupeKey(c.event.tenant, c.event.id);
        if (rows.has(k)) found.set(k, rows.get(k)!);
      }
      return found;
    },
    recordChanges: async () => undefined,
    insertNew: (events) =>
      new Promise<void>((resolve) =>
        held.push(() => {
          for (const { candidate: c } of events) rows.set(dedupeKey(c.event.tenant, c.event.id), { tenant: c.event.tenant, id: c.event.id, bodyHash: c.bodyHash, ...c.ref });
          resolve();
        }),
      ),
    insertLate: async () => undefined,
    insertDuplicates: async () => undefined,
    insertRejections: async () => undefined,
  };
  return { ledger, rows, land: () => held.splice(0).forEach((f) => f()) };
}

async function message(e: UsageEvent, partition: number, offset: number): Promise<RawMessage> {
  return { ref: { topic: 'usage.events', partition, offset: String(offset) }, key: null, value: await encoder.encode(e) };
}
const event = (id: string): UsageEvent => ({ id, tenant: 't', customer: 'c', meter: 'api_calls', value: '1', timestamp: NOW - 1000, properties: {}, source: null });

/** A worker's ingest deps over `ledger`, with its own in-flight keys (and whatever `extra` adds). */
const workerDeps = (ledger: LedgerStore, extra: Partial<IngestDeps> = {}): IngestDeps => ({
  decoder: createDecoder({}),
  meters: () => meters,
  ledger,
  clock: () => NOW,
  maxFutureSkewMs: 300_000,
  inFlight: new Map(),
  ...extra,
});

describe.each([
  ['with the dedupe filter', true],
  ['without a filter (every key looked up)', false],
])('two units in flight never both take one key as new (%s)', (_, withFilter) => {
  const depsFor = (ledger: LedgerStore): IngestDeps =>
    workerDeps(ledger, withFilter ? { dedupeFilter: createDedupeFilter({ capacity: 1000, bitsPerKey: 10, dedupeWindowMs: 35 * 86_400_000, maxFutureSkewMs: 300_000 }, NOW - 40 * 86_400_000) } : {});

  it('given unit n decided a key new and its insert has not landed, when unit n+1 holds a copy from another partition, then the copy is a duplicate', async () => {
    const { ledger, rows, land } = slowLedger();
    const deps = depsFor(ledger);
    const first = await decideBatch([await message(event('k1'), 0, 10)], deps);
    const storing = storeBatch(first, deps);
    // Unit n+1 is decided while unit n's write is in flight.
    const second = await decideBatch([await message(event('k1'), 3, 99), await message(event('k2'), 3, 100)], deps);
    expect(second.decisions.map((d) => d.kind)).toEqual(['duplicate', 'new']);
    expect(second.decisions[0]).toMatchObject({ original: { partition: 0, offset: '10' } });
    land();
    await storing;
    expect(rows.size).toBe(1);
  });

  it('given unit n is re-read after its writes failed (in-flight keys cleared), then its messages are decided new again', async () => {
    const { ledger } = slowLedger();
    const deps = depsFor(ledger);
    await decideBatch([await message(event('k3'), 0, 20)], deps);
    // The unit failed: the worker clears what was in flight before the messages are re-read.
    deps.inFlight!.clear();
    const again = await decideBatch([await message(event('k3'), 0, 20)], deps);
    expect(again.decisions.map((d) => d.kind)).toEqual(['new']);
  });
});

describe('copies of keys this worker stored lately are decided without a ledger lookup', () => {
  /** A ledger that holds `stored` and records which keys each lookup asked for. */
  function countingLedger(stored: StoredKey[]) {
    const asked: string[][] = [];
    const ledger: LedgerStore = {
      lookup: async (cs) => {
        asked.push(cs.map((c) => c.event.id));
        const found = new Map<string, StoredKey>();
        for (const s of stored) if (cs.some((c) => c.event.id === s.id && c.event.tenant === s.tenant)) found.set(dedupeKey(s.tenant, s.id), s);
        return found;
      },
      recordChanges: async () => undefined,
      insertNew: async () => undefined,
      insertLate: async () => undefined,
      insertDuplicates: async () => undefined,
      insertRejections: async () => undefined,
    };
    return { ledger, asked };
  }
  const depsWith = (ledger: LedgerStore, recentlyStored: Map<string, StoredKey>): IngestDeps => workerDeps(ledger, { recentlyStored });

  it('a copy of a recently stored key is a duplicate of that row, and only the other keys are looked up', async () => {
    const e = event('own-1');
    const hash = (await decideBatch([await message(e, 0, 1)], depsWith(countingLedger([]).ledger, new Map()))).decisions[0]!.candidate.bodyHash;
    const mine: StoredKey = { tenant: 't', id: 'own-1', bodyHash: hash, topic: 'usage.events', partition: 0, offset: '1' };
    const { ledger, asked } = countingLedger([]);
    const decided = await decideBatch([await message(e, 2, 50), await message(event('other-1'), 2, 51)], depsWith(ledger, new Map([[dedupeKey('t', 'own-1'), mine]])));
    expect(decided.decisions.map((d) => d.kind)).toEqual(['duplicate', 'new']);
    expect(decided.decisions[0]).toMatchObject({ original: { partition: 0, offset: '1' } });
    expect(asked).toEqual([['other-1']]);
  });

  it('the very message read again (same partition and offset) is recognised as redelivered, and a different body as a conflict', async () => {
    const e = event('own-2');
    const hash = (await decideBatch([await message(e, 0, 7)], depsWith(countingLedger([]).ledger, new Map()))).decisions[0]!.candidate.bodyHash;
    const recent = new Map([[dedupeKey('t', 'own-2'), { tenant: 't', id: 'own-2', bodyHash: hash, topic: 'usage.events', partition: 0, offset: '7' }]]);
    const { ledger, asked } = countingLedger([]);
    const again = await decideBatch([await message(e, 0, 7), await message({ ...e, value: '2' }, 1, 8)], depsWith(ledger, recent));
    expect(again.decisions.map((d) => d.kind)).toEqual(['redelivered', 'conflict']);
    expect(asked).toEqual([[]]);
  });

  it('a key stored by another writer is still looked up in the ledger', async () => {
    const theirs: StoredKey = { tenant: 't', id: 'theirs-1', bodyHash: 'x'.repeat(64), topic: 'usage.events', partition: 5, offset: '3' };
    const { ledger, asked } = countingLedger([theirs]);
    const decided = await decideBatch([await message(event('theirs-1'), 1, 9)], depsWith(ledger, new Map()));
    expect(asked).toEqual([['theirs-1']]);
    expect(decided.decisions.map((d) => d.kind)).toEqual(['conflict']);
  });
});

describe("a unit's change record", () => {
  it("leaves its new events' streams to the ledger's INSERT, records its redelivered events' streams itself, and publishes both", async () => {
    // 'again-1' was stored from this very message before a crash: the ledger has that row.
    const again = event('again-1');
    const hash = (await decideBatch([await message(again, 0, 5)], workerDeps(slowLedger().ledger))).decisions[0]!.candidate.bodyHash;
    const stored: StoredKey = { tenant: 't', id: 'again-1', bodyHash: hash, topic: 'usage.events', partition: 0, offset: '5' };
    const recorded: { streams: string[]; at: number }[] = [];
    const inserted: { ids: string[]; at: number }[] = [];
    const ledger: LedgerStore = {
      lookup: async (cs) => new Map(cs.filter((c) => c.event.id === 'again-1').map((c) => [c.key, stored])),
      recordChanges: async (changes, at) => {
        recorded.push({ streams: changes.map((c) => `${c.customer}/${c.meter}`), at });
      },
      insertNew: async (events, at) => {
        inserted.push({ ids: events.map((e) => e.candidate.event.id), at });
      },
      insertLate: async () => undefined,
      insertDuplicates: async () => undefined,
      insertRejections: async () => undefined,
    };
    let clock = NOW;
    const deps = workerDeps(ledger, { clock: () => clock });
    const decided = await decideBatch([await message(again, 0, 5), await message({ ...event('fresh-1'), customer: 'c2' }, 0, 6)], deps);
    expect(decided.decisions.map((d) => d.kind)).toEqual(['redelivered', 'new']);
    // Stored a while after it was decided (the unit before it was still writing): stamped then.
    clock = NOW + 2_000;
    const outcome = await storeBatch(decided, deps);
    expect(inserted).toEqual([{ ids: ['fresh-1'], at: NOW + 2_000 }]);
    expect(recorded.filter((r) => r.streams.length > 0)).toEqual([{ streams: ['c/api_calls'], at: NOW + 2_000 }]);
    expect(outcome.changes.map((c) => `${c.customer}/${c.meter}`).sort()).toEqual(['c/api_calls', 'c2/api_calls']);
  });
});
