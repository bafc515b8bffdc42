/**
 * The most recent keys added, bounded: between `limit / 2` and `limit` of them are kept, in two
 * generations. New keys go to the young generation; when it holds `limit / 2`, it becomes the old
 * one and the previous old one is dropped whole. Every add and lookup is O(1): nothing is ever
 * evicted one key at a time (which, on a JavaScript Map, means iterating over the entries deleted
 * before).
 */
export interface RecentKeys<V> {
  get(key: string): V | undefined;
  add(key: string, value: V): void;
  readonly size: number;
}

export function createRecentKeys<V>(limit: number): RecentKeys<V> {
  const half = Math.max(1, Math.floor(limit / 2));
  let young = new Map<string, V>();
  let old = new Map<string, V>();
  return {
    get: (key) => young.get(key) ?? old.get(key),
    add(key, value) {
      young.set(key, value);
      if (young.size >= half) {
        old = young;
        young = new Map();
      }
    },
    get size() {
      return young.size + old.size;
    },
  };
}
