/**
 * The pusher's totals are read in pieces (span-reads.ts, STREAMS_PER_READ): every stream in
 * exactly one piece, in order, and a customer's streams never split over two statements.
 */
import { KEY_BYTES_PER_READ, keyBytes, readPieces } from '../../src/adapters/clickhouse/stream-scope';
import { splitByWeight } from '../../src/domain/split-by-weight';

describe('splitByWeight: splits a read into statements of bounded size', () => {
  const cases: { name: string; weights: number[]; size: number; pieces: number[][] }[] = [
    { name: 'nothing to read: no statement', weights: [], size: 3, pieces: [] },
    { name: 'fits in one piece', weights: [1, 1, 1], size: 3, pieces: [[1, 1, 1]] },
    { name: 'one over: a second piece', weights: [1, 1, 1, 1], size: 3, pieces: [[1, 1, 1], [1]] },
    { name: 'a customer with many streams is never split', weights: [2, 5, 1], size: 3, pieces: [[2], [5], [1]] },
    { name: 'fills up to the size exactly', weights: [2, 1, 2, 1, 3], size: 3, pieces: [[2, 1], [2, 1], [3]] },
    { name: 'size 1: one per piece', weights: [1, 1], size: 1, pieces: [[1], [1]] },
  ];
  it.each(cases)('$name', ({ weights, size, pieces }) => {
    const items = weights.map((w, i) => ({ i, w }));
    const got = splitByWeight(items, (x) => x.w, size);
    expect(got.map((p) => p.map((x) => x.w))).toEqual(pieces);
    // Every item once, in the order given.
    expect(got.flat().map((x) => x.i)).toEqual(items.map((x) => x.i));
    // No piece over the size unless it is a single heavy item.
    for (const p of got) if (p.length > 1) expect(p.reduce((a, x) => a + x.w, 0)).toBeLessThanOrEqual(size);
  });
});

describe('readPieces: bounded by streams and by the bytes of keys a statement carries', () => {
  const customer = (i: number, length = 8, streams = 1) => ({ tenant: 't', customer: `c${i}`.padEnd(length, 'x'), streams });
  it('short keys: pieces of streamsPerRead streams', () => {
    const keys = Array.from({ length: 10 }, (_, i) => customer(i, 8, 2));
    expect(readPieces(keys, (c) => c.streams, 6).map((p) => p.length)).toEqual([3, 3, 3, 1]);
  });
  it('long keys: no piece carries more than KEY_BYTES_PER_READ bytes of keys (an HTTP server limits the URL)', () => {
    // 2,000 customers of 1,000 bytes each: 2 MB of keys, far fewer streams than the stream bound.
    const keys = Array.from({ length: 2_000 }, (_, i) => customer(i, 1_000));
    const pieces = readPieces(keys, (c) => c.streams, 5_000);
    expect(pieces.length).toBeGreaterThan(1);
    for (const piece of pieces) expect(piece.reduce((sum, k) => sum + keyBytes(k), 0)).toBeLessThanOrEqual(KEY_BYTES_PER_READ);
    expect(pieces.flat()).toEqual(keys);
  });
  it('multi-byte characters count as their UTF-8 bytes', () => {
    expect(keyBytes({ tenant: 't', customer: 'é', meter: 'm' })).toBe(1 + 2 + 1 + 12);
  });
});
