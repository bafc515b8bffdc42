import type { LedgerKeySource } from '../../src/adapters/clickhouse/ledger-keys';
import { CATCH_UP_INTERVAL_MS, startDedupeFilter } from '../../src/pipeline/dedupe-filter-sync';
import { silentLogger } from '../../src/runtime/logger';
import { dedupeKey } from '../../src/domain/keys';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 29, 12);
const tick = () => new Promise((r) => setImmediate(r));

/** Keys other workers stored, each read held open until the test answers it. */
function otherWorkers() {
  const reads: { since: number; answer: (keys: [string, string][]) => void }[] = [];
  const keys: LedgerKeySource = {
    load: async () => 0,
    ingestedSince: (since) => new Promise((resolve) => reads.push({ since, answer: resolve })),
  };
  return { keys, reads };
}

async function started(clock: { now: number }) {
  const { keys, reads } = otherWorkers();
  const synced = await startDedupeFilter({
    options: { capacity: 1_000, bitsPerKey: 10, dedupeWindowMs: 35 * DAY, maxFutureSkewMs: 300_000 },
    keys,
    ingestedBy: 'worker-a',
    clock: () => clock.now,
    logger: silentLogger(),
  });
  return { synced, reads };
}

/** A unit's catch-up that must wait for read number `n` (counting from 1) until it is answered with `keys`. */
async function waitsForRead(synced: { catchUp(): Promise<void> }, reads: ReturnType<typeof otherWorkers>['reads'], n: number, keys: [string, string][]) {
  let done = false;
  const catchingUp = synced.catchUp().then(() => (done = true));
  await tick();
  expect(reads).toHaveLength(n);
  expect(done).toBe(false);
  reads[n - 1]!.answer(keys);
  await catchingUp;
}

describe('dedupe filter catch-up: keys other workers stored are known before a unit is decided', () => {
  it('waits for a fresh read at start and after a rebalance, then knows what it read', async () => {
    const clock = { now: T0 };
    const { synced, reads } = await started(clock);
    await waitsForRead(synced, reads, 1, [['t', 'stored-by-b']]);
    expect(synced.filter.certainlyAbsent(dedupeKey('t', 'stored-by-b'), T0)).toBe(false);

    clock.now += 100;
    synced.rebalanced();
    await waitsForRead(synced, reads, 2, []);
  });

  it('within the interval a unit does not wait; past half of it the next read starts in the background; past the interval a unit waits for a read', async () => {
    const clock = { now: T0 };
    const { synced, reads } = await started(clock);
    await waitsForRead(synced, reads, 1, []);

    clock.now = T0 + CATCH_UP_INTERVAL_MS / 4;
    await synced.catchUp(); // fresh: no read
    expect(reads).toHaveLength(1);

    clock.now = T0 + (CATCH_UP_INTERVAL_MS * 3) / 4;
    await synced.catchUp(); // resolves at once, while a read starts behind it
    expect(reads).toHaveLength(2);
    reads[1]!.answer([['t', 'k-background']]);
    await tick();
    expect(synced.filter.certainlyAbsent(dedupeKey('t', 'k-background'), T0)).toBe(false);

    // The background read started at 3/4 of the interval: a quarter-interval later it is fresh.
    clock.now = T0 + CATCH_UP_INTERVAL_MS;
    await synced.catchUp();
    expect(reads).toHaveLength(2);

    clock.now = T0 + CATCH_UP_INTERVAL_MS * 3;
    await waitsForRead(synced, reads, 3, [['t', 'k-late']]);
    expect(synced.filter.certainlyAbsent(dedupeKey('t', 'k-late'), T0)).toBe(false);
  });

  it('a unit that finds a read under way and the last one too old waits for it (one read, shared)', async () => {
    const clock = { now: T0 };
    const { synced, reads } = await started(clock);
    await waitsForRead(synced, reads, 1, []);
    clock.now = T0 + (CATCH_UP_INTERVAL_MS * 3) / 4;
    await synced.catchUp();
    expect(reads).toHaveLength(2); // under way, not answered yet
    clock.now = T0 + CATCH_UP_INTERVAL_MS + 10;
    await waitsForRead(synced, reads, 2, []);
  });
});
