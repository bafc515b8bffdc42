import { createBloomFilter, type BloomFilter } from './bloom-filter';

/**
 * The worker's memory of the ledger's dedupe keys: it proves a key absent, so the ledger lookup
 * is skipped for it, or says "maybe", and the ledger decides (design rule 3: every decision stays
 * exact). Pure: time arrives as arguments.
 *
 * Coverage: the filter holds every ledger key whose event time is at or after `coverageStart`.
 * A copy is recognised when its event time lies within the dedupe window W of the stored one, so
 * a key with event time t can be proven absent only if t − W ≥ coverageStart; an older event
 * is always "maybe" (looked up).
 *
 * Memory: at most two generations of `capacity` keys each, `bitsPerKey` bits per key. When the
 * current generation is full, the previous one is dropped and a new one begins; coverage then
 * starts at the dropped one's successor: it holds every key stored since it began, hence every
 * key whose event time is later than its start plus the allowed clock skew (a later event could
 * not have been accepted earlier).
 */
export interface DedupeFilterOptions {
  /** Keys per generation; memory is 2 × capacity × bitsPerKey bits at most. */
  readonly capacity: number;
  readonly bitsPerKey: number;
  readonly dedupeWindowMs: number;
  /** How far ahead of the clock an accepted event time may be (the validation bound). */
  readonly maxFutureSkewMs: number;
}

interface Generation {
  readonly filter: BloomFilter;
  /** Event time from which every ledger key is in this generation or a later one. */
  readonly covers: number;
}

export interface DedupeFilterStats {
  readonly keys: number;
  readonly bytes: number;
  readonly generations: number;
  /** Event times from here on are covered (ms); earlier ones are always looked up. */
  readonly coverageStart: number;
  /** Expected false-positive rate of a key checked against every generation. */
  readonly falsePositiveRate: number;
}

export interface DedupeFilter {
  /**
   * True only if the ledger certainly holds no copy of the key (dedupeKey(tenant, id)) within
   * the window of `eventTime`.
   */
  certainlyAbsent(key: string, eventTime: number): boolean;
  /** Remembers a key (dedupeKey(tenant, id)) the ledger holds or is about to hold (recorded at decision time). */
  record(key: string, now: number): void;
  stats(): DedupeFilterStats;
}

/** `coverageStart`: the event time from which the caller loads (or has loaded) every ledger key. */
export function createDedupeFilter(opts: DedupeFilterOptions, coverageStart: number): DedupeFilter {
  const generation = (covers: number): Generation => ({ filter: createBloomFilter(opts), covers });
  let previous: Generation | null = null;
  let current = generation(coverageStart);
  const oldest = () => previous ?? current;
  return {
    certainlyAbsent(key, eventTime) {
      if (eventTime - opts.dedupeWindowMs < oldest().covers) return false;
      return !current.filter.mightContain(key) && !(previous?.filter.mightContain(key) ?? false);
    },
    record(key, now) {
      if (current.filter.count >= opts.capacity) {
        previous = current;
        current = generation(now + opts.maxFutureSkewMs);
      }
      current.filter.add(key);
    },
    stats() {
      const gens = previous ? [previous, current] : [current];
      const pass = gens.reduce((p, g) => p * (1 - g.filter.falsePositiveRate()), 1);
      return {
        keys: gens.reduce((n, g) => n + g.filter.count, 0),
        bytes: gens.reduce((n, g) => n + g.filter.bits / 8, 0),
        generations: gens.length,
        coverageStart: oldest().covers,
        falsePositiveRate: 1 - pass,
      };
    },
  };
}
