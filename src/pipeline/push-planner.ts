import type { PushStore } from '../adapters/clickhouse/push-store';
import { settledStatuses } from '../adapters/clickhouse/push-store';
import type { AbsoluteStream, DeltaStream } from '../adapters/clickhouse/stream-store';
import type { MeterCatalog } from '../domain/meters';
import { customerKey, periodKey, streamKey } from '../domain/keys';
import { planAbsolute, planDelta, wholeUnitsOf, type PlannedPush, type PlanResult } from '../domain/push-plan';
import { addDue, type DueStream } from '../domain/push-schedule';
import { billingPeriodOf } from '../domain/windows';
import type { Delivery } from './push-delivery';

export interface PlannerDeps {
  readonly pushes: PushStore;
  readonly shadow: boolean;
  readonly meters: () => MeterCatalog;
  readonly billingAnchorDay: number;
  readonly delivery: Delivery;
}

const NOTHING: PlanResult = { kind: 'nothing' };

/** A stream's plan, with the stream as a later cycle should see it if this one defers it. */
export type StreamPlan = readonly [key: string, plan: PlanResult, stream: DueStream];

/**
 * Plans pushes from the totals a cycle read and what the push ledger says was pushed. That is
 * read by a full scan and then kept up to date by this process as it records pushes: while it is
 * the pusher, it is the ledger's only writer of new pushes (status changes by others never change
 * what counts as pushed). A new term, or any failure, reads the ledger again.
 */
export function createPlanner(deps: PlannerDeps) {
  let pushedDeltas = new Map<string, bigint>();
  let lastAbsolutes = new Map<string, bigint>();
  /** customerKey → Stripe customer id: all of them at a full scan, then what changed since. */
  let mappings = new Map<string, string>();

  const recorded = (push: PlannedPush) => {
    if (push.mode === 'delta') pushedDeltas.set(streamKey(push), push.pushedTo);
    else lastAbsolutes.set(periodKey(push, push.windowStart), push.pushedTo);
  };
  const customerOf = (s: DeltaStream | AbsoluteStream) => mappings.get(customerKey(s)) ?? null;
  const eventNameOf = (s: DeltaStream | AbsoluteStream) => deps.meters().get(s.meter)!.stripe!.eventName;

  return {
    /** Reads what was pushed, and what is pending, from the push ledger. */
    async readPushLedger() {
      const statuses = settledStatuses(deps.shadow);
      // One statement at a time (see pusher.ts); nothing is replaced unless every read succeeded.
      const deltas = await deps.pushes.pushedDeltas(statuses);
      const absolutes = await deps.pushes.lastAbsolutes(statuses);
      const pending = await deps.pushes.list({ status: 'pending' });
      pushedDeltas = deltas;
      lastAbsolutes = absolutes;
      deps.delivery.setPending(pending);
      // A push being delivered may not be in the ledger yet (shadow mode writes it once sent).
      for (const push of deps.delivery.delivering()) recorded(push);
    },

    /** A push recorded (or being delivered): what counts as pushed from now on. */
    recorded,

    /** Every mapping (a full scan), or those changed since the last read. */
    mappingsRead(read: Map<string, string> | undefined, full: boolean) {
      if (full) mappings = read!;
      else for (const [k, v] of read ?? []) mappings.set(k, v);
    },

    /**
     * Plans each stream read, one as it is asked for (the caller may let other work run between
     * them: a full cycle plans every stream); a stream whose push is in flight or pending when its
     * turn comes is added to `deferred` instead.
     */
    *plan(deltas: readonly DeltaStream[], absolutes: readonly AbsoluteStream[], now: number, deferred: Map<string, DueStream>): Generator<StreamPlan> {
      for (const s of deltas) {
        const key = streamKey(s);
        const due = { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: s.windowStart };
        if (deps.delivery.busy(key)) {
          addDue(deferred, key, due);
          continue;
        }
        const pushed = pushedDeltas.get(key) ?? 0n;
        // Most streams of a full cycle have nothing new: told apart before a plan's input is built.
        if (wholeUnitsOf(s.total) === pushed) yield [key, NOTHING, due];
        else yield [key, planDelta({ ...s, eventName: eventNameOf(s), stripeCustomerId: customerOf(s), pushed }, now), due];
      }
      for (const s of absolutes) {
        const key = streamKey(s);
        const due = { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: s.periodStart };
        if (deps.delivery.busy(key)) {
          addDue(deferred, key, due);
          continue;
        }
        const lastPushed = lastAbsolutes.get(periodKey(s, s.periodStart)) ?? null;
        if (wholeUnitsOf(s.value) === lastPushed) {
          yield [key, NOTHING, due];
          continue;
        }
        const input = {
          ...s,
          eventName: eventNameOf(s),
          stripeCustomerId: customerOf(s),
          periodEnd: billingPeriodOf(s.periodStart, deps.billingAnchorDay).end,
          lastPushed,
        };
        yield [key, planAbsolute(input, now), due];
      }
    },
  };
}
