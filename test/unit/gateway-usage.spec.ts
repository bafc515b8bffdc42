import type { UsageRow } from '../../src/adapters/clickhouse/usage-query';
import { combineWindows, groupUsage } from '../../src/gateway/usage-shape';
import { parseUsageParams } from '../../src/gateway/usage-params';
import type { Aggregation } from '../../src/domain/meters';

const row = (customer: string, meter: string, hour: number, value: string, state: UsageRow['state'] = 'final', events = 1): UsageRow => ({
  tenant: 'acme',
  customer,
  meter,
  window_start: new Date(Date.UTC(2026, 10, 1, hour)).toISOString(),
  window_end: new Date(Date.UTC(2026, 10, 1, hour + 1)).toISOString(),
  value,
  events,
  state,
});
const aggregations: Record<string, Aggregation> = { tokens: 'sum', api_calls: 'count', peak: 'max', seats: 'last', users: 'unique_count' };

describe('usage totals over windows (group_by, billing period)', () => {
  it('adds sum and count meters exactly, never as floats', () => {
    const c = combineWindows([row('c1', 'tokens', 0, '0.1'), row('c1', 'tokens', 1, '0.2'), row('c1', 'tokens', 2, '99999999999999999999.999999999')], 'sum', 'one customer');
    expect(c).toEqual({ ok: true, value: '100000000000000000000.299999999', events: 3, state: 'final', windows: 3 });
  });

  it('takes the largest window of max meters, the latest window of last meters, and the least settled state', () => {
    expect(combineWindows([row('c1', 'peak', 0, '7.5'), row('c1', 'peak', 1, '12', 'open'), row('c1', 'peak', 2, '3', 'closed')], 'max', 'one customer')).toMatchObject({ ok: true, value: '12', state: 'open' });
    expect(combineWindows([row('c1', 'seats', 2, '4'), row('c1', 'seats', 0, '9')], 'last', 'one customer')).toMatchObject({ ok: true, value: '4' });
  });

  it('refuses what cannot be combined: unique counts, last values across customers, unknown meters', () => {
    expect(combineWindows([row('c1', 'users', 0, '3')], 'unique_count', 'one customer')).toMatchObject({ ok: false, reason: expect.stringMatching(/unique values per window/) });
    expect(combineWindows([row('c1', 'seats', 0, '3')], 'last', 'many customers')).toMatchObject({ ok: false });
    expect(combineWindows([row('c1', 'gone', 0, '3')], undefined, 'one customer')).toMatchObject({ ok: false, reason: expect.stringMatching(/not in the meter catalog/) });
  });

  it('groups per (customer, meter) or per meter', () => {
    const rows = [row('c1', 'tokens', 0, '1.5'), row('c1', 'tokens', 1, '2'), row('c2', 'tokens', 0, '0.25'), row('c2', 'api_calls', 0, '3', 'open', 3)];
    expect(groupUsage(rows, 'customer', (m) => aggregations[m])).toEqual({
      ok: true,
      rows: [
        { customer: 'c1', meter: 'tokens', value: '3.5', events: 2, state: 'final', windows: 2 },
        { customer: 'c2', meter: 'tokens', value: '0.25', events: 1, state: 'final', windows: 1 },
        { customer: 'c2', meter: 'api_calls', value: '3', events: 3, state: 'open', windows: 1 },
      ],
    });
    expect(groupUsage(rows, 'meter', (m) => aggregations[m])).toMatchObject({ ok: true, rows: [{ meter: 'tokens', value: '3.75' }, { meter: 'api_calls', value: '3' }] });
    expect(groupUsage([row('c1', 'users', 0, '1')], 'meter', (m) => aggregations[m])).toMatchObject({ ok: false, error: expect.stringMatching(/^group_by=meter: meter users counts unique values/) });
  });
});

describe('GET /v1/usage parameters', () => {
  const p = (q: string) => parseUsageParams(new URLSearchParams(q), 'acme');
  it('reads a query scoped to the key tenant', () => {
    expect(p('from=2026-11-01&to=2026-12-01T00:00:00Z&customer=c1&meter=tokens&window=day&group_by=customer')).toEqual({
      ok: true,
      query: { tenant: 'acme', customer: 'c1', meter: 'tokens', from: Date.UTC(2026, 10, 1), to: Date.UTC(2026, 11, 1), window: 'day' },
      groupBy: 'customer',
    });
  });
  it.each([
    ['', /from and to are required/],
    ['from=yesterday&to=2026-12-01', /from must be an ISO-8601 date/],
    ['from=2026-12-01&to=2026-11-01', /from must be before to/],
    ['from=2020-01-01&to=2026-12-01', /at most 366 days apart/],
    ['from=2026-11-01&to=2026-12-01&window=week', /window must be one of minute, hour, day, month/],
    ['from=2026-11-01&to=2026-12-01&group_by=tenant', /group_by must be one of customer, meter/],
    ['from=2026-11-01&to=2026-12-01&tenant=globex', /unknown parameter "tenant"/],
    ['from=2026-11-01&to=2026-12-01&customer=a&customer=b', /customer is given more than once/],
    ['from=2026-11-01&to=2026-12-01&customer=', /must not be empty/],
  ])('refuses %j with a clear message', (q, message) => {
    const r = p(q);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(message);
  });
});
