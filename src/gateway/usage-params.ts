import type { UsageQuery } from '../adapters/clickhouse/usage-query';
import { parseIsoTime } from '../domain/iso-time';
import type { QueryWindow } from '../domain/windows';
import type { GroupBy } from './usage-shape';

const WINDOWS: readonly QueryWindow[] = ['minute', 'hour', 'day', 'month'];
const GROUP_BY: readonly GroupBy[] = ['customer', 'meter'];
const USAGE_PARAMS = new Set(['customer', 'meter', 'from', 'to', 'window', 'group_by']);
/** Longest span one request may read (the query scans the ledger's rows in it). */
const MAX_SPAN_MS = 366 * 86_400_000;

export type UsageParams = { ok: true; query: UsageQuery; groupBy: GroupBy | undefined } | { ok: false; error: string };

/** GET /v1/usage's query string → a usage query of the key's tenant, or a message for a 400. */
export function parseUsageParams(search: URLSearchParams, tenant: string): UsageParams {
  const single = checkSingle(search, USAGE_PARAMS);
  if (single) return { ok: false, error: single };
  const from = search.get('from');
  const to = search.get('to');
  if (from === null || to === null) return { ok: false, error: 'from and to are required (ISO-8601, e.g. 2026-11-01T00:00:00Z)' };
  const fromMs = parseIsoTime(from);
  if (fromMs === undefined) return { ok: false, error: `from must be an ISO-8601 date or date-time (e.g. 2026-11-01T00:00:00Z), got ${JSON.stringify(from.slice(0, 64))}` };
  const toMs = parseIsoTime(to);
  if (toMs === undefined) return { ok: false, error: `to must be an ISO-8601 date or date-time (e.g. 2026-12-01T00:00:00Z), got ${JSON.stringify(to.slice(0, 64))}` };
  if (fromMs >= toMs) return { ok: false, error: 'from must be before to' };
  if (toMs - fromMs > MAX_SPAN_MS) return { ok: false, error: 'from and to may be at most 366 days apart' };
  const window = search.get('window') ?? undefined;
  if (window !== undefined && !(WINDOWS as readonly string[]).includes(window)) return { ok: false, error: `window must be one of ${WINDOWS.join(', ')}` };
  const groupBy = search.get('group_by') ?? undefined;
  if (groupBy !== undefined && !(GROUP_BY as readonly string[]).includes(groupBy)) return { ok: false, error: `group_by must be one of ${GROUP_BY.join(', ')}` };
  const customer = search.get('customer') ?? undefined;
  const meter = search.get('meter') ?? undefined;
  if (customer === '' || meter === '') return { ok: false, error: 'customer and meter, when given, must not be empty' };
  return { ok: true, query: { tenant, customer, meter, from: fromMs, to: toMs, window: window as QueryWindow | undefined }, groupBy: groupBy as GroupBy | undefined };
}

/** GET /v1/usage/period's query string → the customer, or a message for a 400. */
export function parsePeriodParams(search: URLSearchParams): { ok: true; customer: string } | { ok: false; error: string } {
  const single = checkSingle(search, new Set(['customer']));
  if (single) return { ok: false, error: single };
  const customer = search.get('customer');
  if (!customer) return { ok: false, error: 'customer is required' };
  return { ok: true, customer };
}

function checkSingle(search: URLSearchParams, known: ReadonlySet<string>): string | undefined {
  const seen = new Set<string>();
  for (const name of search.keys()) {
    if (!known.has(name)) return `unknown parameter ${JSON.stringify(name.slice(0, 64))} (known: ${[...known].join(', ')})`;
    if (seen.has(name)) return `parameter ${name} is given more than once`;
    seen.add(name);
  }
  return undefined;
}
