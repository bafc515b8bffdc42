/**
 * Splits items, in order, into consecutive groups of at most `max` weight (an item heavier than
 * `max` is a group alone). Every item is in exactly one group. Used for ingest units (events per
 * unit) and for the pieces of the pusher's reads (streams and key bytes per statement).
 */
export function splitByWeight<T>(items: readonly T[], weight: (item: T) => number, max: number): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    const w = weight(item);
    if (current.length > 0 && total + w > max) {
      groups.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += w;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}
