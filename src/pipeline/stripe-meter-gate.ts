import { checkStripeMeters, DEFAULT_PAYLOAD_KEYS, type MeterConfigProblem, type PayloadKeys, type StripeMeterInfo } from '../domain/meter-config-check';
import type { MeterCatalog, MeterDefinition } from '../domain/meters';
import { errorMessage } from '../runtime/errors';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';

/**
 * Which meters the pusher may bill, after checking them against the Stripe account's meters.
 * A meter whose Stripe meter is missing, inactive or of the wrong formula is held: its usage is
 * counted and kept, nothing is sent (sending would be rejected, or worse, billed wrongly), the
 * problem is logged with what to change, exported as meterline_stripe_meter_problems, and listed
 * by reconcile. Until a check has succeeded (Stripe unreachable at start-up) every meter is held,
 * and the check is retried (after 1 s, doubling, at most every `retryMs`).
 */
export interface MeterGate {
  /** The catalog with held meters made non-billing (their `stripe` is null). */
  billable(): MeterCatalog;
  payloadKeys(eventName: string): PayloadKeys;
  problems(): readonly MeterConfigProblem[];
  stop(): void;
}

export async function startMeterGate(deps: {
  catalog: MeterCatalog;
  listMeters: () => Promise<StripeMeterInfo[]>;
  logger: Logger;
  metrics?: Metrics;
  retryMs?: number;
}): Promise<MeterGate> {
  const log = deps.logger.child({ module: 'stripe-meters' });
  const held = (names: Set<string>): MeterCatalog =>
    new Map([...deps.catalog].map(([name, m]): [string, MeterDefinition] => [name, names.has(name) ? { ...m, stripe: null } : m]));
  const allBilling = new Set([...deps.catalog.values()].filter((m) => m.stripe).map((m) => m.name));
  let billable = held(allBilling);
  let keys: ReadonlyMap<string, PayloadKeys> = new Map();
  let problems: readonly MeterConfigProblem[] = [];
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  const check = async (): Promise<boolean> => {
    try {
      const result = checkStripeMeters(deps.catalog, await deps.listMeters());
      keys = result.keys;
      problems = result.problems;
      billable = held(new Set(problems.map((p) => p.meter)));
      for (const p of problems) log.error({ meter: p.meter, eventName: p.eventName }, `meter '${p.meter}' is held (nothing is pushed for it): ${p.problem}`);
      if (problems.length === 0) log.info({ meters: keys.size }, 'Stripe meters match meters.yaml');
      deps.metrics?.stripeMeterProblems.set(problems.length);
      return true;
    } catch (err) {
      log.error({ err: errorMessage(err) }, 'cannot list the Stripe meters: every meter is held until they can be checked');
      deps.metrics?.stripeMeterProblems.set(allBilling.size);
      return false;
    }
  };
  let failures = 0;
  const retry = async () => {
    timer = null;
    if (stopped || (await check()) || stopped) return;
    // From a second, doubling, to at most retryMs: a blip at start-up holds nothing for long.
    failures += 1;
    timer = setTimeout(() => void retry(), Math.min(deps.retryMs ?? 60_000, 1_000 * 2 ** (failures - 1)));
  };
  await retry();
  return {
    billable: () => billable,
    payloadKeys: (eventName) => keys.get(eventName) ?? DEFAULT_PAYLOAD_KEYS,
    problems: () => problems,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
