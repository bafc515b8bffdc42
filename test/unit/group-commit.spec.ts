import { groupCommit } from '../../src/adapters/clickhouse/group-commit';

describe('groupCommit', () => {
  it('writes rows added in the same turn with one write, in order, and resolves each caller after it', async () => {
    const writes: number[][] = [];
    const add = groupCommit<number>(async (rows) => {
      writes.push(rows);
    });
    await Promise.all([add(1), add(2), add(3)]);
    expect(writes).toEqual([[1, 2, 3]]);
  });

  it('gathers rows added while a write is in flight into the next write', async () => {
    const writes: number[][] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const add = groupCommit<number>(async (rows) => {
      writes.push(rows);
      if (writes.length === 1) await first;
    });
    const a = add(1);
    await new Promise((r) => setImmediate(r));
    const later = [add(2), add(3)];
    release();
    await Promise.all([a, ...later]);
    expect(writes).toEqual([[1], [2, 3]]);
  });

  it('rejects every caller whose row was in a failed write, and only those', async () => {
    let fail = true;
    const add = groupCommit<number>(async () => {
      if (fail) {
        fail = false;
        throw new Error('insert failed');
      }
    });
    const results = await Promise.allSettled([add(1), add(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(add(3)).resolves.toBeUndefined();
  });

  it('never resolves a caller before its row was written', async () => {
    let written = false;
    const add = groupCommit<number>(async () => {
      await new Promise((r) => setTimeout(r, 10));
      written = true;
    });
    await add(1);
    expect(written).toBe(true);
  });
});
