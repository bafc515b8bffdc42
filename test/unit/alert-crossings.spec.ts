import { allotmentCatalog } from '../../src/domain/allotments';
import { alertIdOf, newCrossings, type PeriodTotal } from '../../src/domain/alert-crossings';
import { parseDecimal } from '../../src/domain/decimal';

const u = (text: string): bigint => {
  const d = parseDecimal(text);
  if (!d.ok) throw new Error(d.reason);
  return d.units;
};
const PERIOD = { periodStart: Date.UTC(2026, 10, 1), periodEnd: Date.UTC(2026, 11, 1) };
const catalog = allotmentCatalog([
  { tenant: 'acme', meter: 'tokens', customer: null, limitUnits: u('1000'), thresholds: [u('50'), u('80'), u('100')] },
  { tenant: 'acme', meter: 'tokens', customer: 'vip', limitUnits: u('10'), thresholds: [u('100')] },
  { tenant: 'acme', meter: 'gb', customer: null, limitUnits: u('3'), thresholds: [u('33.333333333')] },
]);
const total = (customer: string, meter: string, value: string): PeriodTotal => ({ tenant: 'acme', customer, meter, ...PERIOD, totalUnits: u(value) });
const thresholdsOf = (totals: PeriodTotal[], recorded: string[] = []) =>
  newCrossings(catalog, totals, new Set(recorded)).map((c) => `${c.customer}/${c.meter}@${Number(c.thresholdUnits) / 1e9}`);

describe('threshold crossings', () => {
  it.each<[string, PeriodTotal[], string[], string[]]>([
    ['below every threshold: nothing', [total('c1', 'tokens', '499.999999999')], [], []],
    ['exactly at a threshold counts as reached', [total('c1', 'tokens', '500')], [], ['c1/tokens@50']],
    ['one jump past several thresholds: one alert each', [total('c1', 'tokens', '1000.000000001')], [], ['c1/tokens@50', 'c1/tokens@80', 'c1/tokens@100']],
    ['already recorded thresholds are not raised again', [total('c1', 'tokens', '900')], ['c1/tokens@50'], ['c1/tokens@80']],
    ['a customer allotment replaces the meter-wide one', [total('vip', 'tokens', '10')], [], ['vip/tokens@100']],
    ['…so the meter-wide 50 % of 1000 does not apply to it', [total('vip', 'tokens', '9.999999999')], [], []],
    ['a meter without an allotment is not watched', [total('c1', 'api_calls', '1e20')], [], []],
    ['a fractional percentage is exact: 33.333333333 % of 3 is 0.99999999999', [total('c2', 'gb', '0.999999999')], [], []],
    ['…and 1 reaches it', [total('c2', 'gb', '1')], [], ['c2/gb@33.333333333']],
    ['several streams at once', [total('c1', 'tokens', '800'), total('c2', 'tokens', '10')], [], ['c1/tokens@50', 'c1/tokens@80']],
  ])('%s', (_name, totals, recordedNames, expected) => {
    const recorded = recordedNames.map((n) => {
      const [cm, pct] = n.split('@') as [string, string];
      const [customer, meter] = cm.split('/') as [string, string];
      return alertIdOf({ tenant: 'acme', customer, meter, periodStart: PERIOD.periodStart, thresholdUnits: u(pct) });
    });
    expect(thresholdsOf(totals, recorded)).toEqual(expected);
  });

  it('names one crossing with one id, whatever the total, and different crossings differently', () => {
    const [a] = newCrossings(catalog, [total('c1', 'tokens', '500')], new Set());
    const [b] = newCrossings(catalog, [total('c1', 'tokens', '650')], new Set());
    expect(a!.alertId).toBe(b!.alertId);
    expect(a!.alertId).toMatch(/^alrt_[0-9a-f]{32}$/);
    expect(a).toMatchObject({ limitUnits: u('1000'), totalUnits: u('500'), ...PERIOD });
    const ids = new Set([
      alertIdOf({ tenant: 'acme', customer: 'c1', meter: 'tokens', periodStart: PERIOD.periodStart, thresholdUnits: u('50') }),
      alertIdOf({ tenant: 'acme', customer: 'c1', meter: 'tokens', periodStart: PERIOD.periodEnd, thresholdUnits: u('50') }),
      alertIdOf({ tenant: 'acme', customer: 'c1', meter: 'tokens', periodStart: PERIOD.periodStart, thresholdUnits: u('80') }),
      alertIdOf({ tenant: 'acme', customer: 'c2', meter: 'tokens', periodStart: PERIOD.periodStart, thresholdUnits: u('50') }),
      alertIdOf({ tenant: 'other', customer: 'c1', meter: 'tokens', periodStart: PERIOD.periodStart, thresholdUnits: u('50') }),
    ]);
    expect(ids.size).toBe(5);
  });
});
