/**
 * A Bloom filter of strings: `mightContain` is false only for a key never added ("certainly
 * absent"); true means "maybe present". Fixed memory, chosen up front: `bitsPerKey` bits for each
 * of `capacity` keys. With k = round(bitsPerKey · ln 2) hash positions, the false-positive rate
 * at n keys is (1 − e^(−k·n/m))^k: about 0.8 % at capacity with 10 bits per key. Past capacity
 * it keeps answering correctly, only "maybe" more often. Pure: no I/O, no clock.
 */
export interface BloomFilter {
  add(key: string): void;
  mightContain(key: string): boolean;
  /** Keys added (each add counts, repeats included). */
  readonly count: number;
  readonly bits: number;
  readonly hashes: number;
  /** The expected false-positive rate at the current count. */
  falsePositiveRate(): number;
}

export interface BloomSizing {
  readonly capacity: number;
  readonly bitsPerKey: number;
}

export function bloomFalsePositiveRate(bits: number, hashes: number, keys: number): number {
  return (1 - Math.exp((-hashes * keys) / bits)) ** hashes;
}

export function createBloomFilter({ capacity, bitsPerKey }: BloomSizing): BloomFilter {
  if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  if (!(bitsPerKey >= 1 && bitsPerKey <= 64)) throw new RangeError(`bitsPerKey must be within 1–64, got ${bitsPerKey}`);
  // Positions are 32-bit hashes: at most 2^32 bits (512 MiB) in one filter.
  if (capacity * bitsPerKey > 2 ** 32) throw new RangeError(`capacity × bitsPerKey must be at most 2^32 bits, got ${capacity * bitsPerKey}`);
  const words = Math.ceil((capacity * bitsPerKey) / 32);
  const bits = words * 32;
  const hashes = Math.max(1, Math.round(bitsPerKey * Math.LN2));
  const array = new Uint32Array(words);
  let count = 0;
  // Double hashing (Kirsch–Mitzenmacher): position i = h1 + i·h2, from two 32-bit hashes.
  const probe = (key: string, set: boolean): boolean => {
    let h1 = 0x811c9dc5;
    let h2 = 0x9747b28c;
    for (let i = 0; i < key.length; i += 1) {
      const c = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    // Final avalanche (murmur3 fmix32) so nearby keys spread over the whole array.
    h1 = fmix32(h1);
    h2 = fmix32(h2) | 1;
    for (let i = 0; i < hashes; i += 1) {
      const bit = ((h1 + Math.imul(i, h2)) >>> 0) % bits;
      const word = bit >>> 5;
      const mask = 1 << (bit & 31);
      if (set) array[word]! |= mask;
      else if ((array[word]! & mask) === 0) return false;
    }
    return true;
  };
  return {
    add(key) {
      probe(key, true);
      count += 1;
    },
    mightContain: (key) => probe(key, false),
    get count() {
      return count;
    },
    bits,
    hashes,
    falsePositiveRate: () => bloomFalsePositiveRate(bits, hashes, count),
  };
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
