import { createOrderedUnits, type UnitSteps } from '../../src/pipeline/ordered-units';

function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
const tick = () => new Promise((r) => setImmediate(r));

/**
 * One hand-over through a fresh pipeline: resolves once every unit is committed, or rejects
 * (after every started store settled) with the first failure.
 */
async function runOrdered<U, D>(units: readonly U[], steps: UnitSteps<U, D>, maxInFlight = 2): Promise<void> {
  let failed: { error: unknown } | null = null;
  const pipeline = createOrderedUnits(steps, { maxInFlight, onFailure: (_, error) => void (failed ??= { error }) });
  try {
    await pipeline.accept(units);
  } catch (err) {
    failed ??= { error: err };
  }
  await pipeline.drain();
  if (failed) throw (failed as { error: unknown }).error;
}

/** Steps that log what happens, with each unit's store held until the test releases it. */
function scripted(n: number) {
  const log: string[] = [];
  const stores = Array.from({ length: n }, () => deferred());
  const steps: UnitSteps<number, number> = {
    decide: async (u) => {
      log.push(`decide ${u}`);
      return u;
    },
    store: async (u) => {
      log.push(`store ${u} start`);
      await stores[u]!.promise;
      log.push(`store ${u} done`);
    },
    commit: async (u) => {
      log.push(`commit ${u}`);
    },
  };
  return { log, stores, steps };
}

describe('pipelined units, ordered commits', () => {
  it('given a slow unit n, when unit n+1 is stored first, then n+1 is committed only after n is stored and committed', async () => {
    const { log, stores, steps } = scripted(3);
    const run = runOrdered([0, 1, 2], steps);
    await tick();
    stores[1]!.resolve();
    await tick();
    // Unit 1 is durable, unit 0 is not: nothing may be committed yet.
    expect(log.filter((l) => l.startsWith('commit'))).toEqual([]);
    stores[0]!.resolve();
    stores[2]!.resolve();
    await run;
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0', 'commit 1', 'commit 2']);
    expect(log.indexOf('commit 1')).toBeGreaterThan(log.indexOf('store 0 done'));
    expect(log.indexOf('commit 0')).toBeGreaterThan(log.indexOf('store 0 done'));
  });

  it('decides unit n+1 while unit n is still being written', async () => {
    const { log, stores, steps } = scripted(2);
    const run = runOrdered([0, 1], steps);
    await tick();
    expect(log).toEqual(['decide 0', 'store 0 start', 'decide 1', 'store 1 start']);
    stores[0]!.resolve();
    stores[1]!.resolve();
    await run;
  });

  it('keeps at most maxInFlight units decided but not committed', async () => {
    const { log, stores, steps } = scripted(4);
    const run = runOrdered([0, 1, 2, 3], steps, 2);
    await tick();
    expect(log.filter((l) => l.startsWith('decide'))).toEqual(['decide 0', 'decide 1']);
    stores[0]!.resolve();
    await tick();
    await tick();
    expect(log.filter((l) => l.startsWith('decide'))).toEqual(['decide 0', 'decide 1', 'decide 2']);
    for (const s of stores) s.resolve();
    await run;
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0', 'commit 1', 'commit 2', 'commit 3']);
  });

  it('given unit n fails to store, then no later unit is committed and the error comes only after every started store settled', async () => {
    const { log, stores, steps } = scripted(3);
    const run = runOrdered([0, 1, 2], steps);
    let settled = false;
    run.then(
      () => (settled = true),
      () => (settled = true),
    );
    await tick();
    stores[0]!.reject(new Error('insert failed'));
    await tick();
    await tick();
    // Unit 1's store is still in flight: the caller must not re-read yet.
    expect(settled).toBe(false);
    stores[1]!.resolve();
    stores[2]!.resolve();
    await expect(run).rejects.toThrow('insert failed');
    expect(log.filter((l) => l.startsWith('commit'))).toEqual([]);
    expect(log).not.toContain('decide 2');
  });

  it('given a later unit fails, the earlier ones stay committed and nothing after the failure is', async () => {
    const { log, stores, steps } = scripted(3);
    const run = runOrdered([0, 1, 2], steps);
    await tick();
    stores[0]!.resolve();
    await tick();
    await tick();
    stores[1]!.reject(new Error('second unit failed'));
    stores[2]!.resolve();
    await expect(run).rejects.toThrow('second unit failed');
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0']);
  });

  it('given deciding a unit fails (registry down), the units before it still commit in order', async () => {
    const { log, stores, steps } = scripted(3);
    const failing: UnitSteps<number, number> = {
      ...steps,
      decide: async (u, i) => {
        if (u === 2) throw new Error('registry unreachable');
        return steps.decide(u, i);
      },
    };
    const run = runOrdered([0, 1, 2], failing, 3);
    await tick();
    stores[0]!.resolve();
    stores[1]!.resolve();
    await expect(run).rejects.toThrow('registry unreachable');
    // Durable units may stay uncommitted (they are re-read and recognised), never commit out of order.
    const commits = log.filter((l) => l.startsWith('commit'));
    expect(['commit 0', 'commit 1'].slice(0, commits.length)).toEqual(commits);
  });
});

describe('pipelined units across hand-overs (one per fetch)', () => {
  const failures = () => {
    const seen: { units: number[]; error: string }[] = [];
    return { seen, onFailure: (units: readonly number[], error: unknown) => void seen.push({ units: [...units], error: String(error) }) };
  };

  it('accepts a fetch once its units are decided, so the next fetch is decided while the first is still being written', async () => {
    const { log, stores, steps } = scripted(2);
    const pipeline = createOrderedUnits(steps, { onFailure: failures().onFailure });
    await pipeline.accept([0]);
    expect(log).toEqual(['decide 0', 'store 0 start']);
    await pipeline.accept([1]);
    expect(log).toEqual(['decide 0', 'store 0 start', 'decide 1', 'store 1 start']);
    stores[0]!.resolve();
    stores[1]!.resolve();
    await pipeline.drain();
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0', 'commit 1']);
  });

  it('given the later fetch is stored first, then its offsets are committed only after the earlier fetch is stored and committed', async () => {
    const { log, stores, steps } = scripted(2);
    const pipeline = createOrderedUnits(steps, { onFailure: failures().onFailure });
    await pipeline.accept([0]);
    await pipeline.accept([1]);
    stores[1]!.resolve();
    await tick();
    await tick();
    expect(log.filter((l) => l.startsWith('commit'))).toEqual([]);
    stores[0]!.resolve();
    await pipeline.drain();
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0', 'commit 1']);
    expect(log.indexOf('commit 1')).toBeGreaterThan(log.indexOf('store 0 done'));
  });

  it('holds the third fetch until the first is committed (at most maxInFlight units written at once)', async () => {
    const { log, stores, steps } = scripted(3);
    const pipeline = createOrderedUnits(steps, { maxInFlight: 2, onFailure: failures().onFailure });
    await pipeline.accept([0]);
    await pipeline.accept([1]);
    let third = false;
    const accepting = pipeline.accept([2]).then(() => (third = true));
    await tick();
    expect(third).toBe(false);
    expect(log).not.toContain('decide 2');
    stores[0]!.resolve();
    await accepting;
    expect(log.indexOf('decide 2')).toBeGreaterThan(log.indexOf('commit 0'));
    stores[1]!.resolve();
    stores[2]!.resolve();
    await pipeline.drain();
  });

  it('given an accepted unit fails after its fetch was accepted, then it and every later unit are handed back uncommitted, once no write is in flight', async () => {
    const { log, stores, steps } = scripted(3);
    const { seen, onFailure } = failures();
    const pipeline = createOrderedUnits(steps, { onFailure });
    await pipeline.accept([0]);
    await pipeline.accept([1]);
    stores[0]!.reject(new Error('insert failed'));
    await tick();
    await tick();
    // Unit 1 is still being written: nothing may be read again yet.
    expect(seen).toEqual([]);
    // A fetch handed over meanwhile was read before the re-read position moved: refused.
    const meanwhile = pipeline.accept([2]);
    stores[1]!.resolve();
    await expect(meanwhile).rejects.toThrow('insert failed');
    await pipeline.drain();
    expect(seen).toEqual([{ units: [0, 1], error: 'Error: insert failed' }]);
    expect(log.filter((l) => l.startsWith('commit'))).toEqual([]);
    expect(log).not.toContain('decide 2');
  });

  it('takes units again after recovering from a failure, committing from a fresh chain', async () => {
    let failNext = true;
    const log: string[] = [];
    const { seen, onFailure } = failures();
    const pipeline = createOrderedUnits<number, number>(
      {
        decide: async (u) => u,
        store: async (u) => {
          if (failNext) {
            failNext = false;
            throw new Error('ClickHouse unavailable');
          }
          log.push(`store ${u}`);
        },
        commit: async (u) => void log.push(`commit ${u}`),
      },
      { onFailure },
    );
    await pipeline.accept([0]);
    await pipeline.drain();
    expect(seen).toEqual([{ units: [0], error: 'Error: ClickHouse unavailable' }]);
    // Unit 0 read again, then unit 1.
    await pipeline.accept([0]);
    await pipeline.accept([1]);
    await pipeline.drain();
    expect(log).toEqual(['store 0', 'commit 0', 'store 1', 'commit 1']);
  });

  it('given a decision fails (registry down), the hand-over is refused and nothing of it is handed back as stored', async () => {
    const { stores, steps } = scripted(1);
    const { seen, onFailure } = failures();
    const pipeline = createOrderedUnits<number, number>({ ...steps, decide: async () => Promise.reject(new Error('registry unreachable')) }, { onFailure });
    await expect(pipeline.accept([0])).rejects.toThrow('registry unreachable');
    stores[0]!.resolve();
    await pipeline.drain();
    expect(seen).toEqual([{ units: [], error: 'Error: registry unreachable' }]);
  });

  it('drain resolves only once every accepted unit is committed', async () => {
    const { log, stores, steps } = scripted(2);
    const pipeline = createOrderedUnits(steps, { onFailure: failures().onFailure });
    await pipeline.accept([0, 1]);
    let drained = false;
    const draining = pipeline.drain().then(() => (drained = true));
    stores[0]!.resolve();
    await tick();
    await tick();
    expect(drained).toBe(false);
    stores[1]!.resolve();
    await draining;
    expect(log.filter((l) => l.startsWith('commit'))).toEqual(['commit 0', 'commit 1']);
  });
});
