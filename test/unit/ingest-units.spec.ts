import { splitByWeight as splitUnits } from '../../src/domain/split-by-weight';

const UNIT_MAX_EVENTS = 10_000;

describe('ingest units: the batches of one fetch, split so no unit outlasts the group session', () => {
  const size = (n: number) => n;

  it('keeps whole batches together up to the cap, in order', () => {
    expect(splitUnits([4000, 3000, 2000, 2000, 500], size, UNIT_MAX_EVENTS)).toEqual([[4000, 3000, 2000], [2000, 500]]);
  });

  it('a batch bigger than the cap is a unit of its own, never split', () => {
    expect(splitUnits([12_000, 1, 10_000, 1], size, UNIT_MAX_EVENTS)).toEqual([[12_000], [1], [10_000], [1]]);
  });

  it('loses and duplicates nothing', () => {
    const batches = Array.from({ length: 200 }, (_, i) => (i * 7919) % 3001);
    const units = splitUnits(batches, size, 5000);
    expect(units.flat()).toEqual(batches);
    for (const u of units) expect(u.length === 1 || u.reduce((a, b) => a + b, 0) <= 5000).toBe(true);
  });

  it('nothing in, nothing out', () => {
    expect(splitUnits([], size, UNIT_MAX_EVENTS)).toEqual([]);
  });
});
