/** The three steps of an ingest unit, as the pipeline runs them. */
export interface UnitSteps<U, D> {
  /** Decode and decide (in memory, plus the ledger lookups it needs). */
  decide(unit: U, index: number): Promise<D>;
  /** Durable writes of a decided unit. */
  store(decided: D, index: number): Promise<void>;
  /** The offset commit (and whatever follows a durable unit), in unit order. */
  commit(decided: D, index: number): Promise<void>;
}

/** Thrown into the commits of units after a failed one: they are re-read, never committed. */
export class EarlierUnitFailed extends Error {
  constructor() {
    super('an earlier ingest unit failed: this one is left uncommitted and will be re-read');
    this.name = 'EarlierUnitFailed';
  }
}

/**
 * Runs units through decide → store → commit, pipelined: unit n+1 is decided while unit n's
 * writes are in flight, with at most `maxInFlight` units decided but not yet committed.
 *
 * Ordering invariants (what makes a kill -9 at any instant safe):
 *  - a unit's offsets are committed only after its own store resolved AND every earlier unit
 *    committed: commits happen strictly in unit order, so a slow unit n holds n+1's commit back;
 *  - after any failure no further unit is started or committed; stores already started are
 *    awaited before the first error is rethrown, so nothing is still writing when the caller
 *    lets the units be re-read.
 */
export async function runOrdered<U, D>(units: readonly U[], steps: UnitSteps<U, D>, maxInFlight = 2): Promise<void> {
  let failure: { error: unknown } | null = null;
  const fail = (error: unknown) => {
    failure ??= { error };
  };
  const pending = new Set<Promise<void>>();
  let previousCommit: Promise<void> = Promise.resolve();
  for (const [index, unit] of units.entries()) {
    while (pending.size >= maxInFlight && !failure) await Promise.race(pending);
    if (failure) break;
    let decided: D;
    try {
      decided = await steps.decide(unit, index);
    } catch (err) {
      fail(err);
      break;
    }
    if (failure) break;
    const stored = steps.store(decided, index);
    const earlier = previousCommit;
    const committed = (async () => {
      await stored;
      await earlier;
      if (failure) throw new EarlierUnitFailed();
      await steps.commit(decided, index);
    })();
    previousCommit = committed;
    const tracked: Promise<void> = committed.catch(fail).finally(() => pending.delete(tracked));
    pending.add(tracked);
  }
  await Promise.all(pending);
  if (failure) throw (failure as { error: unknown }).error;
}
