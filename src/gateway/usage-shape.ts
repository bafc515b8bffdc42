import type { UsageRow } from '../adapters/clickhouse/usage-query';
import { STATE_RANK } from '../domain/counters';
import { formatDecimal, parseDecimal } from '../domain/decimal';
import type { CounterState } from '../domain/lateness';
import type { Aggregation } from '../domain/meters';

/**
 * Totals over several windows of `queryUsage`, exact (bigint nano-units, never floats):
 *   sum, count  → the sum of the windows' values (additive);
 *   max         → the largest window value;
 *   last        → the value of the latest window, only over one customer's windows (the
 *                 latest event of several customers is not one customer's usage);
 *   unique_count → not combinable: distinct values per window do not add up to distinct
 *                 values over the period (a value seen in two windows would count twice).
 * The state of a total is its least settled window's (open < closed < final).
 */
export type Combined = { readonly ok: true; readonly value: string; readonly events: number; readonly state: CounterState; readonly windows: number } | { readonly ok: false; readonly reason: string };

export function combineWindows(rows: readonly UsageRow[], aggregation: Aggregation | undefined, scope: 'one customer' | 'many customers'): Combined {
  const meter = rows[0]?.meter ?? '';
  if (aggregation === undefined) return { ok: false, reason: `meter ${meter} is not in the meter catalog: its windows cannot be combined` };
  if (aggregation === 'unique_count') return { ok: false, reason: `meter ${meter} counts unique values per window: those do not add up over windows; read its windows without group_by` };
  if (aggregation === 'last' && scope === 'many customers') return { ok: false, reason: `meter ${meter} reports each customer's last value: it cannot be combined over customers` };
  const units = rows.map((r) => unitsOf(r.value));
  let value: bigint;
  if (aggregation === 'sum' || aggregation === 'count') value = units.reduce((a, b) => a + b, 0n);
  else if (aggregation === 'max') value = units.reduce((a, b) => (b > a ? b : a), units[0] ?? 0n);
  else value = units[lastWindowIndex(rows)] ?? 0n;
  const rank = Math.min(...rows.map((r) => STATE_RANK[r.state]));
  const state = (Object.keys(STATE_RANK) as CounterState[]).find((s) => STATE_RANK[s] === rank) ?? 'open';
  return { ok: true, value: formatDecimal(value), events: rows.reduce((a, r) => a + r.events, 0), state, windows: rows.length };
}

export type GroupBy = 'customer' | 'meter';

export interface GroupedUsageRow {
  readonly customer?: string;
  readonly meter: string;
  readonly value: string;
  readonly events: number;
  readonly state: CounterState;
  readonly windows: number;
}

/** group_by=customer: one total per (customer, meter); group_by=meter: one per meter over all customers. */
export function groupUsage(rows: readonly UsageRow[], by: GroupBy, aggregationOf: (meter: string) => Aggregation | undefined): { ok: true; rows: GroupedUsageRow[] } | { ok: false; error: string } {
  const groups = new Map<string, UsageRow[]>();
  for (const r of rows) {
    const key = by === 'customer' ? `${r.customer}\u0000${r.meter}` : r.meter;
    const list = groups.get(key) ?? [];
    list.push(r);
    groups.set(key, list);
  }
  const out: GroupedUsageRow[] = [];
  for (const list of groups.values()) {
    const first = list[0]!;
    const c = combineWindows(list, aggregationOf(first.meter), by === 'customer' ? 'one customer' : 'many customers');
    if (!c.ok) return { ok: false, error: `group_by=${by}: ${c.reason}` };
    out.push({ ...(by === 'customer' ? { customer: first.customer } : {}), meter: first.meter, value: c.value, events: c.events, state: c.state, windows: c.windows });
  }
  return { ok: true, rows: out };
}

function unitsOf(value: string): bigint {
  const d = parseDecimal(value);
  if (!d.ok) throw new Error(`usage value ${JSON.stringify(value)} is not a decimal: ${d.reason}`);
  return d.units;
}

function lastWindowIndex(rows: readonly UsageRow[]): number {
  let best = 0;
  rows.forEach((r, i) => {
    if (Date.parse(r.window_start) > Date.parse(rows[best]!.window_start)) best = i;
  });
  return best;
}
