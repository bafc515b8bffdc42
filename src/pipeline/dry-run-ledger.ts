import type { LedgerStore, NewEvent } from '../ports/ledger';
import { windowKeyString, type WindowKey } from '../domain/counters';
import { formatDecimal, parseDecimal } from '../domain/decimal';
import { storedKeyOf, type StoredKey } from '../domain/ingest-decision';

/** A counter a dry run would move: what its counted events would gain. */
export interface CounterMove extends WindowKey {
  readonly aggregation: string;
  readonly addedEvents: number;
  /** Sum of the added values (exact decimal text); what a sum meter's total would grow by. */
  readonly addedValue: string;
}

export interface DryRunLedger extends LedgerStore {
  /** Counters whose totals the stored events would move, ordered by key (too-late events move none). */
  counterMoves(): CounterMove[];
}

/**
 * The real ledger for reads, an in-memory overlay for writes: a dry run goes through the very
 * same ingest path and decides exactly as a real run would (an event the run "stored" in an
 * earlier batch is found by later lookups), yet writes nothing. Memory grows with the events a
 * real run would add (their keys and window sums), not with what is already stored.
 */
export function createDryRunLedger(real: LedgerStore): DryRunLedger {
  const wouldStore = new Map<string, StoredKey>();
  const moves = new Map<string, { key: WindowKey; aggregation: string; events: number; units: bigint }>();
  const record = (events: readonly NewEvent[]) => {
    for (const { candidate: c, lateness } of events) {
      wouldStore.set(c.key, storedKeyOf(c));
      if (lateness.disposition === 'too_late') continue;
      const key: WindowKey = { tenant: c.event.tenant, customer: c.event.customer, meter: c.event.meter, windowStart: lateness.window.start };
      const k = windowKeyString(key);
      const m = moves.get(k) ?? { key, aggregation: c.meter.aggregation, events: 0, units: 0n };
      const v = parseDecimal(c.event.value);
      m.events += 1;
      if (v.ok) m.units += v.units;
      moves.set(k, m);
    }
  };
  return {
    async lookup(candidates) {
      const found = await real.lookup(candidates);
      for (const c of candidates) {
        const k = c.key;
        const mine = wouldStore.get(k);
        if (mine && !found.has(k)) found.set(k, mine);
      }
      return found;
    },
    async insertNew(events) {
      record(events);
    },
    async insertLate() {},
    async insertDuplicates() {},
    async insertRejections() {},
    async recordChanges() {},
    counterMoves() {
      return [...moves.values()]
        .sort((a, b) => (windowKeyString(a.key) < windowKeyString(b.key) ? -1 : 1))
        .map((m) => ({ ...m.key, aggregation: m.aggregation, addedEvents: m.events, addedValue: formatDecimal(m.units) }));
    },
  };
}
