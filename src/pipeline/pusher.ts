import type { PushStore, PushRecord } from '../adapters/clickhouse/push-store';
import { settledStatuses, streamKeyString } from '../adapters/clickhouse/push-store';
import type { StreamStore } from '../adapters/clickhouse/stream-store';
import type { BillingSink, SendOutcome } from '../adapters/stripe/billing-sink';
import type { MeterCatalog } from '../domain/meters';
import { billingPeriodOf } from '../domain/windows';
import { planAbsolute, planDelta, type PlannedPush, type PlanResult } from '../domain/push-plan';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { backoffDelay } from '../runtime/rate-limiter';

/** Stripe keeps identifiers unique for at least 24 h: past that, a resend could double-bill. */
export const IDENTIFIER_GUARANTEE_MS = 24 * 3_600_000;

export interface PusherDeps {
  readonly streams: StreamStore;
  readonly pushes: PushStore;
  readonly sink: BillingSink;
  readonly meters: () => MeterCatalog;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Grants one call to Stripe (global rate limit); resolves with the wait in ms. */
  readonly rateLimit: () => Promise<number>;
  readonly maxAttempts?: number;
  /** Absolute meters report per monthly billing period starting on this day (default 1: calendar month). */
  readonly billingAnchorDay?: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * With several workers: whether this process is the pusher right now (see startPushLoop).
   * Checked before anything is planned and again right before each push is recorded, so a
   * process that lost the role mid-cycle records and sends nothing new. Absent: always.
   */
  readonly active?: () => boolean;
}

export interface CycleSummary {
  started: number;
  awaitingMapping: number;
  tooOld: number;
}

/**
 * Sends only new totals to Stripe, exactly once in effect:
 *  1. every push is recorded 'pending' (durably) before it is sent;
 *  2. it is sent with a deterministic identifier, so a resend after a timeout or a crash is a
 *     no-op at Stripe ("already exists" counts as delivered);
 *  3. only then is it marked reported / failed.
 * A stream — (tenant, customer, meter) — has at most one push in flight, so pushes of one
 * stream form a chain pushed-from → pushed-to and Stripe's one-call-per-customer-and-meter
 * rule is kept.
 */
export function createPusher(deps: PusherDeps) {
  const log = deps.logger.child({ module: 'pusher' });
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxAttempts = deps.maxAttempts ?? 12;
  const inFlight = new Map<string, Promise<void>>();
  let stopping = false;
  const active = () => deps.active?.() ?? true;

  const finish = async (push: PlannedPush, createdAt: number, attempts: number, outcome: SendOutcome) => {
    const now = deps.clock();
    switch (outcome.kind) {
      case 'reported':
      case 'already_reported':
        await deps.pushes.record(push, 'reported', { attempts, createdAt, now, lastError: outcome.kind === 'already_reported' ? 'already reported (duplicate identifier)' : '' });
        break;
      case 'shadow':
        await deps.pushes.record(push, 'shadow', { attempts, createdAt, now });
        break;
      case 'failed':
        await deps.pushes.record(push, 'failed', { attempts, createdAt, now, lastError: outcome.reason });
        log.warn({ identifier: push.identifier, meter: push.meter, reason: outcome.reason }, 'push failed');
        break;
      case 'retry':
        // Still pending; the next start-up or cycle resends it with the same identifier.
        await deps.pushes.record(push, 'pending', { attempts, createdAt, now, lastError: outcome.reason });
        break;
      default: {
        const never: never = outcome;
        throw new Error(`unhandled outcome ${JSON.stringify(never)}`);
      }
    }
    deps.metrics?.pushes.inc({ meter: push.meter, outcome: outcome.kind });
  };

  /** Sends until delivered, failed for good, or out of attempts (then it stays pending). */
  const deliver = async (push: PlannedPush, createdAt: number, previousAttempts: number) => {
    let attempts = previousAttempts;
    for (;;) {
      const waited = await deps.rateLimit();
      if (waited > 0) deps.metrics?.rateLimitWait.observe(waited / 1000);
      attempts += 1;
      const outcome = await deps.sink.send(push);
      if (outcome.kind !== 'retry' || attempts - previousAttempts >= maxAttempts || stopping) {
        await finish(push, createdAt, attempts, outcome);
        return;
      }
      await deps.pushes.record(push, 'pending', { attempts, createdAt, now: deps.clock(), lastError: outcome.reason });
      await sleep(backoffDelay(attempts));
    }
  };

  const launch = (push: PlannedPush, createdAt: number, attempts: number) => {
    const key = streamKeyString(push);
    const task = deliver(push, createdAt, attempts)
      .catch((err) => log.error({ err, identifier: push.identifier }, 'push delivery stopped; it stays pending'))
      .finally(() => inFlight.delete(key));
    inFlight.set(key, task);
  };

  return {
    /**
     * Start-up: pending pushes are resent, with their stored identifier and timestamp, before
     * anything new is computed. One pending for more than 24 h is held instead (listed by
     * reconcile): Stripe may have forgotten its identifier, and a blind resend could bill twice.
     */
    async resendPending(): Promise<{ resent: number; held: number }> {
      if (!active()) return { resent: 0, held: 0 };
      // Pushes this process is delivering right now are not resent (once is enough).
      const pending = (await deps.pushes.list({ status: 'pending' })).filter((p) => !inFlight.has(streamKeyString(p)));
      let held = 0;
      for (const p of pending) {
        if (!active()) break;
        if (deps.clock() - p.createdAt > IDENTIFIER_GUARANTEE_MS) {
          held += 1;
          await deps.pushes.record(p, 'held', {
            attempts: p.attempts,
            createdAt: p.createdAt,
            now: deps.clock(),
            lastError: 'pending for more than 24 h: Stripe may no longer recognise its identifier; verify with `meterline reconcile` before resending',
          });
          continue;
        }
        launch(p, p.createdAt, p.attempts);
      }
      await Promise.all(inFlight.values());
      return { resent: pending.length - held, held };
    },

    /** One pass: plan every stream, record and launch the pushes that are due. */
    async cycle(): Promise<CycleSummary> {
      if (!active()) return { started: 0, awaitingMapping: 0, tooOld: 0 };
      const meters = [...deps.meters().values()].filter((m) => m.stripe !== null);
      const deltaMeters = meters.filter((m) => m.stripe!.mode === 'delta');
      const absoluteMeters = meters.filter((m) => m.stripe!.mode === 'absolute');
      const statuses = settledStatuses(deps.sink.shadow);
      const [deltas, absolutes, pushed, lastAbs, mappings, pending] = await Promise.all([
        deps.streams.deltaStreams(deltaMeters.map((m) => m.name)),
        deps.streams.absoluteStreams(absoluteMeters.map((m) => m.name), deps.billingAnchorDay ?? 1),
        deps.pushes.pushedDeltas(statuses),
        deps.pushes.lastAbsolutes(statuses),
        deps.streams.customerMappings(),
        deps.pushes.list({ status: 'pending' }),
      ]);
      const pendingStreams = new Set(pending.map(streamKeyString));
      const now = deps.clock();
      const summary: CycleSummary = { started: 0, awaitingMapping: 0, tooOld: 0 };
      const plans: PlanResult[] = [];
      for (const s of deltas) {
        const key = streamKeyString(s);
        if (inFlight.has(key) || pendingStreams.has(key)) continue;
        const meter = deps.meters().get(s.meter)!;
        plans.push(
          planDelta(
            { ...s, eventName: meter.stripe!.eventName, stripeCustomerId: mappings.get(`${s.tenant}\u0000${s.customer}`) ?? null, pushed: pushed.get(key) ?? 0n },
            now,
          ),
        );
      }
      for (const s of absolutes) {
        const key = streamKeyString(s);
        if (inFlight.has(key) || pendingStreams.has(key)) continue;
        const meter = deps.meters().get(s.meter)!;
        plans.push(
          planAbsolute(
            {
              ...s,
              eventName: meter.stripe!.eventName,
              stripeCustomerId: mappings.get(`${s.tenant}\u0000${s.customer}`) ?? null,
              periodEnd: billingPeriodOf(s.periodStart, deps.billingAnchorDay ?? 1).end,
              lastPushed: lastAbs.get(`${key}\u0000${s.periodStart}`) ?? null,
            },
            now,
          ),
        );
      }
      for (const plan of plans) {
        // Planned from what this process read while it was the pusher; if it no longer is,
        // its successor plans afresh (after a grace period longer than this loop can take).
        if (!active()) break;
        switch (plan.kind) {
          case 'nothing':
            break;
          case 'awaiting_mapping':
            summary.awaitingMapping += 1;
            break;
          case 'too_old':
            summary.tooOld += 1;
            await deps.pushes.record(plan.push, 'failed', { attempts: 0, createdAt: now, now, lastError: plan.reason });
            deps.metrics?.pushes.inc({ meter: plan.push.meter, outcome: 'too_old' });
            break;
          case 'push':
            // Durable intent first: a crash from here on resends this very identifier.
            if (!deps.sink.shadow) await deps.pushes.record(plan.push, 'pending', { attempts: 0, createdAt: now, now });
            launch(plan.push, now, 0);
            summary.started += 1;
            break;
          default: {
            const never: never = plan;
            throw new Error(`unhandled plan ${JSON.stringify(never)}`);
          }
        }
      }
      deps.metrics?.awaitingMapping.set(summary.awaitingMapping);
      deps.metrics?.pushBacklog.set(inFlight.size);
      return summary;
    },

    /** Resolves when every launched push has settled (delivered, failed or left pending). */
    async drain(): Promise<void> {
      while (inFlight.size > 0) await Promise.all(inFlight.values());
    },

    /** Stop retrying: in-flight pushes end after their current attempt (still pending if undelivered). */
    async stop(): Promise<void> {
      stopping = true;
      await this.drain();
    },
  };
}

export type Pusher = ReturnType<typeof createPusher>;
export type { PushRecord };

/**
 * Which process pushes, when several workers share a consumer group: the one that owns the
 * topic's partition 0. Pushes are planned from shared tables (totals and the push ledger), so
 * two pushers planning one stream at the same moment could send two different deltas under two
 * different identifiers — billing twice. One pusher at a time rules that out, and keeps the
 * global Stripe rate limit one process's to spend.
 *
 * A process becoming the pusher waits `graceMs` first: its predecessor (which gave the role up
 * when the rebalance began, before this process could be assigned the partition) may still be
 * recording a push it had planned; after the grace that push is in the ledger as pending, and
 * the new pusher resends every pending push (same identifier, so at most one delivery) before
 * planning anything new — including those a killed predecessor left behind.
 */
export interface PushLeadership {
  isLeader(): boolean;
  readonly graceMs: number;
  readonly clock?: () => number;
}

/** Runs the pusher: pending pushes first, then a cycle every `intervalMs` until stopped. */
export async function startPushLoop(pusher: Pusher, logger: Logger, intervalMs = 1000, leadership?: PushLeadership): Promise<{ stop(): Promise<void> }> {
  const log = logger.child({ module: 'pusher' });
  const clock = leadership?.clock ?? Date.now;
  const resendPending = async () => {
    const resent = await pusher.resendPending();
    if (resent.resent + resent.held > 0) log.info(resent, 'pending pushes left by a previous pusher handled');
  };
  if (!leadership) await resendPending();
  let leaderSince: number | null = null;
  let resentThisTerm = false;
  /** Whether this process may push now (always, without leadership). */
  const mayPush = async () => {
    if (!leadership) return true;
    if (!leadership.isLeader()) {
      if (leaderSince !== null) log.info('no longer the pusher (partition 0 moved to another worker)');
      leaderSince = null;
      resentThisTerm = false;
      return false;
    }
    if (leaderSince === null) {
      leaderSince = clock();
      log.info({ graceMs: leadership.graceMs }, 'this worker owns partition 0: it becomes the pusher after a grace period');
    }
    if (clock() - leaderSince < leadership.graceMs) return false;
    if (!resentThisTerm) {
      await resendPending();
      resentThisTerm = true;
    }
    return true;
  };
  let running = true;
  let current: Promise<unknown> = Promise.resolve();
  const loop = async () => {
    while (running) {
      current = mayPush()
        .then((may) => (may ? pusher.cycle() : undefined))
        .catch((err) => log.error({ err }, 'push cycle failed; retrying next cycle'));
      await current;
      if (running) await new Promise((r) => setTimeout(r, intervalMs));
    }
  };
  const done = loop();
  return {
    async stop() {
      running = false;
      await current;
      await pusher.stop();
      await done;
    },
  };
}
