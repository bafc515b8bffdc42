import { checkStripeMeters, type StripeMeterInfo } from '../../src/domain/meter-config-check';
import { parseMeterCatalog } from '../../src/domain/meters';
import { silentLogger } from '../../src/runtime/logger';
import { createMetrics } from '../../src/runtime/metrics';
import { startMeterGate } from '../../src/pipeline/stripe-meter-gate';

const parsed = parseMeterCatalog({
  meters: [
    { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'tokens' } },
    { name: 'calls', aggregation: 'count', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'calls' } },
    { name: 'peak', aggregation: 'max', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'peak' } },
    { name: 'internal', aggregation: 'sum', window: 'hour', allowed_lateness: '1h' },
  ],
});
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const catalog = parsed.catalog;
const meter = (eventName: string, extra: Partial<StripeMeterInfo> = {}): StripeMeterInfo => ({
  id: `mtr_${eventName}`,
  eventName,
  status: 'active',
  formula: 'sum',
  customerKey: 'stripe_customer_id',
  valueKey: 'value',
  eventTimeWindow: null,
  ...extra,
});

describe("checking meters.yaml against the Stripe account's meters", () => {
  it('given matching meters, then there is no problem and the payload keys are the Stripe meters\' own', () => {
    const r = checkStripeMeters(catalog, [meter('tokens', { customerKey: 'account', valueKey: 'qty' }), meter('calls'), meter('peak', { formula: 'last' })]);
    expect(r.problems).toEqual([]);
    expect(r.keys.get('tokens')).toEqual({ customer: 'account', value: 'qty' });
    expect(r.keys.get('peak')).toEqual({ customer: 'stripe_customer_id', value: 'value' });
    expect(r.keys.has('internal')).toBe(false);
  });

  it('given a missing, an inactive and a wrong-formula meter, then each is a problem naming the meter and what to change', () => {
    const r = checkStripeMeters(catalog, [meter('tokens', { status: 'inactive' }), meter('calls', { formula: 'count' })]);
    const byMeter = new Map(r.problems.map((p) => [p.meter, p.problem]));
    expect(byMeter.get('tokens')).toMatch(/mtr_tokens .*inactive: reactivate it/);
    expect(byMeter.get('calls')).toMatch(/formula 'count'.*need formula 'sum'/);
    expect(byMeter.get('peak')).toMatch(/no Stripe meter has event_name 'peak'.*formula 'last'/);
    expect(r.keys.size).toBe(0);
  });

  it('given a pre-aggregated Stripe meter (event_time_window) for a delta meter, then it is a problem: Stripe would keep one delta per window', () => {
    expect(checkStripeMeters(catalog, [meter('tokens', { eventTimeWindow: 'hour' })]).problems.find((p) => p.meter === 'tokens')?.problem).toMatch(/pre-aggregated/);
  });
});

describe('the meter gate at start-up', () => {
  it('holds a mismatched meter (no longer billing) and exports the number of problems; the others keep their Stripe payload keys', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const gate = await startMeterGate({ catalog, listMeters: async () => [meter('tokens', { valueKey: 'qty' }), meter('calls', { formula: 'last' }), meter('peak', { formula: 'last' })], logger: silentLogger(), metrics });
    expect(gate.billable().get('calls')!.stripe).toBeNull();
    expect(gate.billable().get('tokens')!.stripe).toEqual(catalog.get('tokens')!.stripe);
    expect(gate.payloadKeys('tokens')).toEqual({ customer: 'stripe_customer_id', value: 'qty' });
    expect((await metrics.stripeMeterProblems.get()).values[0]!.value).toBe(1);
    gate.stop();
  });

  it('holds every meter while the Stripe meters cannot be listed, and retries', async () => {
    let calls = 0;
    const gate = await startMeterGate({
      catalog,
      listMeters: async () => {
        calls += 1;
        if (calls === 1) throw new Error('connect ECONNREFUSED');
        return [meter('tokens'), meter('calls'), meter('peak', { formula: 'last' })];
      },
      logger: silentLogger(),
      retryMs: 10,
    });
    expect([...gate.billable().values()].every((m) => m.stripe === null)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(gate.billable().get('tokens')!.stripe).not.toBeNull();
    gate.stop();
  });
});
