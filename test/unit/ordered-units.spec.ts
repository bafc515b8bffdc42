import { runOrdered, type UnitSteps } from '../../src/pipeline/ordered-units';

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
