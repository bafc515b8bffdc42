import { customerKey } from '../src/domain/keys';
import { parseMeterCatalog } from '../src/domain/meters';
import type { PlannedPush } from '../src/domain/push-plan';
import { createPlanner } from '../src/pipeline/push-planner';
import type { Delivery } from '../src/pipeline/push-delivery';

const ROUNDS = 9;

/**
 * `npm run bench -- --plan-cycle N`: the event-loop work of planning a full push cycle after
 * everything was pushed (a new term's first cycle, the 5-minute scan): N delta streams and N
 * absolute (stream, period)s, each with nothing new. No I/O: the planner alone, as the pusher
 * drives it. Prints one JSON line (the median and the fastest of nine rounds).
 */
export async function measurePlanCycle(streams: number): Promise<number> {
  const parsed = parseMeterCatalog({
    meters: [
      { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'tokens' } },
      { name: 'peak', aggregation: 'max', window: 'hour', allowed_lateness: '1h', stripe: { event_name: 'peak' } },
    ],
  });
  if (!parsed.ok) throw new Error(parsed.problems.join('; '));
  const catalog = parsed.catalog;
  const period = Date.parse('2026-11-01T00:00:00Z');
  const hour = 3_600_000;
  const deltas = Array.from({ length: streams }, (_, i) => ({ tenant: 't', customer: `c${i}`, meter: 'tokens', total: `${i}.5`, windowStart: period + hour, windowEnd: period + 2 * hour }));
  const absolutes = Array.from({ length: streams }, (_, i) => ({ tenant: 't', customer: `c${i}`, meter: 'peak', periodStart: period, value: `${i}`, windowStart: period + hour, windowEnd: period + 2 * hour }));
  const delivery = { busy: () => false } as unknown as Delivery;
  const planner = createPlanner({ pushes: {} as never, shadow: true, meters: () => catalog, billingAnchorDay: 1, delivery });
  planner.mappingsRead(new Map(deltas.map((d) => [customerKey(d), `cus_${d.customer}`])), true);
  // What was pushed: floor(total) of every delta stream, the value of every absolute one.
  for (const d of deltas) planner.recorded({ mode: 'delta', tenant: d.tenant, customer: d.customer, meter: d.meter, pushedTo: BigInt(d.total.split('.')[0]!) } as PlannedPush);
  for (const a of absolutes) planner.recorded({ mode: 'absolute', tenant: a.tenant, customer: a.customer, meter: a.meter, windowStart: a.periodStart, pushedTo: BigInt(a.value) } as PlannedPush);
  const ms: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    const start = performance.now();
    let nothing = 0;
    for (const [, plan] of planner.plan(deltas, absolutes, Date.now(), new Map())) if (plan.kind === 'nothing') nothing += 1;
    ms.push(performance.now() - start);
    if (nothing !== 2 * streams) throw new Error(`expected nothing to push for all ${2 * streams} streams, got ${nothing}`);
  }
  ms.sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 10) / 10;
  process.stdout.write(`${JSON.stringify({ benchmark: 'plan-cycle', streams: 2 * streams, medianMs: round(ms[ROUNDS >> 1]!), fastestMs: round(ms[0]!), microsecondsPerStream: round((ms[ROUNDS >> 1]! * 1000) / (2 * streams)) })}\n`);
  return 0;
}
