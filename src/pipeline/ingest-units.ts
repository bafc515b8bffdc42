/** At most this many events per ingest unit (whole batches; a bigger single batch is one unit). */
export const UNIT_MAX_EVENTS = 10_000;

/** Splits items into consecutive groups of at most `max` weight (an item heavier than `max` is a group alone). */
export function splitUnits<T>(items: readonly T[], weight: (item: T) => number, max: number): T[][] {
  const units: T[][] = [];
  let current: T[] = [];
  let total = 0;
  for (const item of items) {
    const w = weight(item);
    if (current.length > 0 && total + w > max) {
      units.push(current);
      current = [];
      total = 0;
    }
    current.push(item);
    total += w;
  }
  if (current.length > 0) units.push(current);
  return units;
}
