import { createRecentKeys } from '../../src/pipeline/recent-keys';

describe('recent keys (the keys of the latest stored units, bounded)', () => {
  it('answers every one of the last limit/2 keys added, however many came before', () => {
    const recent = createRecentKeys<number>(1_000);
    for (let i = 0; i < 10_000; i += 1) recent.add(`k${i}`, i);
    for (let i = 10_000 - 500; i < 10_000; i += 1) expect(recent.get(`k${i}`)).toBe(i);
  });

  it('holds at most limit keys: the oldest are forgotten', () => {
    const recent = createRecentKeys<number>(1_000);
    for (let i = 0; i < 10_000; i += 1) {
      recent.add(`k${i}`, i);
      expect(recent.size).toBeLessThanOrEqual(1_000);
    }
    expect(recent.get('k0')).toBeUndefined();
    expect(recent.get(`k${10_000 - 1_001}`)).toBeUndefined();
  });

  it('a key added again answers its latest value', () => {
    const recent = createRecentKeys<string>(4);
    recent.add('a', 'first');
    recent.add('b', 'x');
    recent.add('a', 'second');
    expect(recent.get('a')).toBe('second');
  });
});
