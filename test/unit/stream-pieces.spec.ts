/**
 * The pusher's totals are read in pieces (stream-store.ts, STREAMS_PER_READ): every stream in
 * exactly one piece, in order, and a customer's streams never split over two statements.
 */
import { piecesOf } from '../../src/adapters/clickhouse/stream-scope';

describe('piecesOf: splits a read into statements of bounded size', () => {
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
    const got = piecesOf(items, (x) => x.w, size);
    expect(got.map((p) => p.map((x) => x.w))).toEqual(pieces);
    // Every item once, in the order given.
    expect(got.flat().map((x) => x.i)).toEqual(items.map((x) => x.i));
    // No piece over the size unless it is a single heavy item.
    for (const p of got) if (p.length > 1) expect(p.reduce((a, x) => a + x.w, 0)).toBeLessThanOrEqual(size);
  });
});
