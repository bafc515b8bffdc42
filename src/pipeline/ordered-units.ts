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
 * A pipeline of units that outlives one hand-over: the units of the next fetch are decided while
 * the previous fetch's units are still being written.
 */
export interface OrderedUnits<U> {
  /**
   * Takes units in order and resolves once every one of them is decided and being written (not
   * yet durable: each is committed later, in order, once its own writes landed). Rejects if one
   * of them, or an earlier unit, failed; by then every write already started has settled, the
   * units left uncommitted were handed to `onFailure`, and the pipeline takes units again.
   */
  accept(units: readonly U[]): Promise<void>;
  /** Resolves once every accepted unit has settled: committed, or failed and handed to `onFailure`. */
  drain(): Promise<void>;
}

export interface OrderedUnitsOptions<U> {
  /** At most this many units decided and not yet committed (the next decision waits). */
  readonly maxInFlight?: number;
  /**
   * After a failure, once nothing is being written any more: the units accepted and left
   * uncommitted (oldest first), which must be delivered again. Units of the failing hand-over
   * that were never accepted are not among them: their hand-over rejects.
   */
  readonly onFailure: (uncommitted: readonly U[], error: unknown) => void | Promise<void>;
}

/**
 * Runs units through decide → store → commit, pipelined: unit n+1 is decided while unit n's
 * writes are in flight, across hand-overs, with at most `maxInFlight` units decided but not
 * committed.
 *
 * Ordering invariants (what makes a kill -9 at any instant safe):
 *  - a unit's offsets are committed only after its own store resolved AND every earlier unit
 *    committed: commits happen strictly in unit order, so a slow unit n holds n+1's commit back;
 *  - after any failure no further unit is started or committed until every store already
 *    started has settled and the uncommitted units were handed back (`onFailure`), so nothing is
 *    still being written when they are read again.
 */
export function createOrderedUnits<U, D>(steps: UnitSteps<U, D>, opts: OrderedUnitsOptions<U>): OrderedUnits<U> {
  const maxInFlight = opts.maxInFlight ?? 2;
  let index = 0;
  /** Accepted units not yet committed, oldest first. */
  let uncommitted: U[] = [];
  const pending = new Set<Promise<void>>();
  let previousCommit: Promise<void> = Promise.resolve();
  let failure: { readonly error: unknown; readonly recovered: Promise<void> } | null = null;

  const settleAll = async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
  };
  const fail = (error: unknown): void => {
    if (failure) return;
    // Recovery waits for every write already started, hands the uncommitted units back, then
    // lets the pipeline take units again (from a clean chain of commits).
    const recovered = (async () => {
      await settleAll();
      const lost = uncommitted;
      uncommitted = [];
      previousCommit = Promise.resolve();
      try {
        await opts.onFailure(lost, error);
      } finally {
        failure = null;
      }
    })();
    failure = { error, recovered };
  };

  const start = async (unit: U): Promise<void> => {
    const i = index;
    index += 1;
    const decided = await steps.decide(unit, i);
    if (failure) throw failure.error;
    uncommitted.push(unit);
    const stored = steps.store(decided, i);
    const earlier = previousCommit;
    const committed = (async () => {
      await stored;
      await earlier;
      if (failure) throw new EarlierUnitFailed();
      await steps.commit(decided, i);
      uncommitted.shift();
    })();
    previousCommit = committed;
    const tracked: Promise<void> = committed.catch(fail).finally(() => pending.delete(tracked));
    pending.add(tracked);
  };

  /** Rejects with a failure's error once it is recovered from (the caller's units come again). */
  const refuseAfterRecovery = async (f: NonNullable<typeof failure>): Promise<never> => {
    await f.recovered;
    throw f.error;
  };

  return {
    async accept(units) {
      // Units handed over while an earlier unit's failure is being recovered from were read
      // before the re-read position was set: they are delivered again, not taken now.
      if (failure) return refuseAfterRecovery(failure);
      for (const unit of units) {
        while (pending.size >= maxInFlight && !failure) await Promise.race(pending);
        if (failure) break;
        try {
          await start(unit);
        } catch (err) {
          fail(err);
          break;
        }
      }
      if (failure) return refuseAfterRecovery(failure);
    },
    async drain() {
      await settleAll();
      if (failure) await failure.recovered;
    },
  };
}

