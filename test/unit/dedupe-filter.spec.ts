import { bloomFalsePositiveRate, createBloomFilter } from '../../src/domain/bloom-filter';
import { createDedupeFilter, type DedupeFilterOptions } from '../../src/domain/dedupe-filter';
import { dedupeKey } from '../../src/domain/ingest-decision';
import { Rng } from '../helpers/hostile-input';

const ALPHABET = ['a', 'b', 'Z', '0', '9', '-', '_', '\\', "'", ' ', 'é', '日', '🚀', '\u0000', '\u00ff'];
function randomKey(rng: Rng): string {
  const len = rng.range(1, 80);
  let s = '';
  for (let i = 0; i < len; i += 1) s += rng.pick(ALPHABET);
  return s;
}

describe('Bloom filter: never "absent" for a key it holds', () => {
  it.each([1, 2, 3, 4, 5])('property (seed %d): every added key is "maybe present", whatever the fill', (seed) => {
    const rng = new Rng(seed);
    // Deliberately overfilled (3× capacity): more "maybe", never a false "absent".
    const filter = createBloomFilter({ capacity: 2_000, bitsPerKey: rng.range(1, 16) });
    const added: string[] = [];
    for (let i = 0; i < 6_000; i += 1) {
      const key = randomKey(rng);
      filter.add(key);
      added.push(key);
      if (i % 500 === 0) expect(added.filter((k) => !filter.mightContain(k))).toEqual([]);
    }
    expect(added.filter((k) => !filter.mightContain(k))).toEqual([]);
    expect(filter.count).toBe(6_000);
  });

  it('answers "absent" for nearly all unknown keys at capacity, at the documented rate (10 bits per key ≈ 0.8 %)', () => {
    const filter = createBloomFilter({ capacity: 100_000, bitsPerKey: 10 });
    for (let i = 0; i < 100_000; i += 1) filter.add(dedupeKey(`tenant-${i % 7}`, `evt-${i}-a6f0c3`));
    let maybe = 0;
    for (let i = 0; i < 100_000; i += 1) if (filter.mightContain(dedupeKey(`tenant-${i % 7}`, `evt-${i}-other`))) maybe += 1;
    expect(filter.hashes).toBe(7);
    expect(filter.falsePositiveRate()).toBeCloseTo(bloomFalsePositiveRate(filter.bits, 7, 100_000), 10);
    expect(filter.falsePositiveRate()).toBeLessThan(0.01);
    expect(maybe / 100_000).toBeLessThan(0.015);
  });

  it('refuses a size it cannot index instead of misbehaving', () => {
    expect(() => createBloomFilter({ capacity: 0, bitsPerKey: 10 })).toThrow(RangeError);
    expect(() => createBloomFilter({ capacity: 1_000_000_000, bitsPerKey: 10 })).toThrow(RangeError);
  });
});

describe('dedupe filter: proves a key absent only where it covers the ledger', () => {
  const DAY = 86_400_000;
  const opts: DedupeFilterOptions = { capacity: 1_000, bitsPerKey: 10, dedupeWindowMs: 35 * DAY, maxFutureSkewMs: 300_000 };
  const T0 = Date.UTC(2026, 10, 1);

  it('given keys loaded from the ledger, a copy of one is "maybe" and a new key is (almost always) absent', () => {
    const f = createDedupeFilter(opts, T0 - 36 * DAY);
    f.record(dedupeKey('t', 'stored'), T0);
    expect(f.certainlyAbsent(dedupeKey('t', 'stored'), T0)).toBe(false);
    let absent = 0;
    for (let i = 0; i < 100; i += 1) if (f.certainlyAbsent(dedupeKey('t', `new-${i}`), T0)) absent += 1;
    expect(absent).toBeGreaterThan(95);
  });

  it('never proves absent an event older than its coverage plus the window (it may match a key the filter never loaded)', () => {
    const coverageStart = T0 - 36 * DAY;
    const f = createDedupeFilter(opts, coverageStart);
    expect(f.certainlyAbsent(dedupeKey('t', 'x'), coverageStart + 35 * DAY)).toBe(true);
    expect(f.certainlyAbsent(dedupeKey('t', 'x'), coverageStart + 35 * DAY - 1)).toBe(false);
  });

  it.each([11, 12, 13])(
    'property (seed %d): across generations, a key stored with event time e is never absent for a copy within the window of e',
    (seed) => {
      const rng = new Rng(seed);
      // A skew as large as the steps between keys, so rotations land within it of recorded event times.
      const small: DedupeFilterOptions = { ...opts, capacity: 300, dedupeWindowMs: 10 * DAY, maxFutureSkewMs: 4 * 3_600_000 };
      let now = T0;
      const f = createDedupeFilter(small, now - 11 * DAY);
      const stored: { id: string; eventTime: number }[] = [];
      for (let i = 0; i < 3_000; i += 1) {
        now += rng.range(0, 4 * 3_600_000);
        // Accepted event times: anything up to the future skew, often late, sometimes very late.
        const eventTime = now + small.maxFutureSkewMs - rng.range(0, rng.int(10) === 0 ? 40 * DAY : 2 * 3_600_000);
        const id = `${i}-${randomKey(rng)}`;
        f.record(dedupeKey('t', id), now);
        stored.push({ id, eventTime });
        if (i % 100 === 0) {
          // A copy is recognised while its event time lies within the window of the stored one.
          const wronglyAbsent = stored.filter((s) => {
            const copyTime = s.eventTime + rng.range(-small.dedupeWindowMs, small.dedupeWindowMs);
            return copyTime <= now + small.maxFutureSkewMs && f.certainlyAbsent(dedupeKey('t', s.id), copyTime);
          });
          expect(wronglyAbsent).toEqual([]);
        }
      }
      const st = f.stats();
      expect(st.generations).toBe(2);
      expect(st.bytes).toBeLessThanOrEqual((2 * 300 * 10) / 8 + 8);
      // Coverage moved forward with the rotations, so memory stayed bounded.
      expect(st.coverageStart).toBeGreaterThan(T0);
    },
  );

  it('after dropping a generation, still says "maybe" for an event that may match a key stored ahead of the clock (future skew)', () => {
    const f = createDedupeFilter({ ...opts, capacity: 10 }, T0 - 36 * DAY);
    // Stored at T0 with an event time as far ahead as validation allows.
    f.record(dedupeKey('t', 'ahead'), T0);
    const eventTime = T0 + opts.maxFutureSkewMs;
    // Two generations fill at once: the one holding the key is dropped.
    for (let i = 0; i < 20; i += 1) f.record(dedupeKey('t', `filler-${i}`), T0);
    // Later, a copy within the window of the stored event time: it must be looked up.
    expect(f.certainlyAbsent(dedupeKey('t', 'ahead'), eventTime + 35 * DAY - opts.maxFutureSkewMs / 2)).toBe(false);
  });

  it('keeps at most two generations: memory is bounded by 2 × capacity × bits per key', () => {
    const f = createDedupeFilter({ ...opts, capacity: 100 }, T0 - 36 * DAY);
    for (let i = 0; i < 1_000; i += 1) f.record(dedupeKey('t', `k${i}`), T0 + i);
    const s = f.stats();
    expect(s.generations).toBe(2);
    expect(s.keys).toBeLessThanOrEqual(200);
    // Bit arrays are whole 32-bit words.
    expect(s.bytes).toBe(2 * Math.ceil((100 * 10) / 32) * 4);
  });
});
