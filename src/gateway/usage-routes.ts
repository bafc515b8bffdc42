import type http from 'node:http';
import type { UsageQuery, UsageRow } from '../adapters/clickhouse/usage-query';
import type { MeterCatalog } from '../domain/meters';
import { billingPeriodOf } from '../domain/windows';
import { MeterlineError } from '../runtime/errors';
import { sendError, sendJson } from './responses';
import { parsePeriodParams, parseUsageParams } from './usage-params';
import { combineWindows, groupUsage } from './usage-shape';

export interface UsageRouteDeps {
  /** `queryUsage`: the same code path as `meterline query`. */
  readonly queryUsage: (q: UsageQuery) => Promise<UsageRow[]>;
  readonly meters: () => MeterCatalog;
  readonly clock: () => number;
  readonly billingAnchorDay: number;
}

/** GET /v1/usage: the key's tenant's usage per window, or totals per customer or meter (group_by). */
export async function getUsage(url: URL, res: http.ServerResponse, tenant: string, deps: UsageRouteDeps): Promise<void> {
  const params = parseUsageParams(url.searchParams, tenant);
  if (!params.ok) return sendError(res, 400, params.error);
  const rows = await query(res, deps, params.query);
  if (!rows) return;
  const common = { tenant, from: new Date(params.query.from).toISOString(), to: new Date(params.query.to).toISOString(), window: params.query.window ?? null };
  if (!params.groupBy) {
    return sendJson(res, 200, { ...common, group_by: null, data: rows.map(({ tenant: _t, ...r }) => r) });
  }
  const aggregations = deps.meters();
  const grouped = groupUsage(rows, params.groupBy, (m) => aggregations.get(m)?.aggregation);
  if (!grouped.ok) return sendError(res, 400, grouped.error);
  sendJson(res, 200, { ...common, group_by: params.groupBy, data: grouped.rows });
}

/** GET /v1/usage/period: one customer's total per meter in the current billing period. */
export async function getPeriodUsage(url: URL, res: http.ServerResponse, tenant: string, deps: UsageRouteDeps): Promise<void> {
  const params = parsePeriodParams(url.searchParams);
  if (!params.ok) return sendError(res, 400, params.error);
  const period = billingPeriodOf(deps.clock(), deps.billingAnchorDay);
  const rows = await query(res, deps, { tenant, customer: params.customer, from: period.start, to: period.end });
  if (!rows) return;
  const byMeter = new Map<string, UsageRow[]>();
  for (const r of rows) byMeter.set(r.meter, [...(byMeter.get(r.meter) ?? []), r]);
  const catalog = deps.meters();
  const meters = [...byMeter.entries()].map(([meter, list]) => {
    const aggregation = catalog.get(meter)?.aggregation ?? null;
    const c = combineWindows(list, aggregation ?? undefined, 'one customer');
    return c.ok
      ? { meter, aggregation, value: c.value, events: c.events, state: c.state, windows: c.windows }
      : { meter, aggregation, value: null, events: list.reduce((a, r) => a + r.events, 0), state: null, windows: list.length, reason: c.reason };
  });
  sendJson(res, 200, { tenant, customer: params.customer, period: { start: new Date(period.start).toISOString(), end: new Date(period.end).toISOString() }, meters });
}

/** The rows, or undefined after answering 400 for a query the data refuses (a window finer than a meter's). */
async function query(res: http.ServerResponse, deps: UsageRouteDeps, q: UsageQuery): Promise<UsageRow[] | undefined> {
  try {
    return await deps.queryUsage(q);
  } catch (err) {
    if (err instanceof MeterlineError && err.code === 'query_window') {
      sendError(res, 400, err.message.replace('--window', 'window'));
      return undefined;
    }
    throw err;
  }
}
