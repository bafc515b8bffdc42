import type { PushStore, PushRecord } from '../adapters/clickhouse/push-store';
import { settledStatuses, streamKeyString } from '../adapters/clickhouse/push-store';
import type { ChangedStream, StreamStore } from '../adapters/clickhouse/stream-store';
import type { BillingSink, SendOutcome } from '../adapters/stripe/billing-sink';
import type { MeterCatalog } from '../domain/meters';
import { billingPeriodOf } from '../domain/windows';
import { planAbsolute, planDelta, RESEND_HORIZON_MS, type PlannedPush, type PlanResult } from '../domain/push-plan';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import { backoffDelay } from '../runtime/retry';
import { pendingDecision, pendingStats, type PendingPush } from '../domain/pending-resend';

interface PendingEntry extends PendingPush {
  readonly push: PlannedPush;
}

/** Stripe keeps identifiers unique for at least 24 h: past that, a resend could double-bill. */
export const IDENTIFIER_GUARANTEE_MS = RESEND_HORIZON_MS;

/**
 * A cycle looks for changes recorded since this long before the previous cycle began reading:
 * a change row is stamped just before its INSERT, which may become visible a little later
 * (and several workers' clocks differ a little). Re-planning an unchanged stream is harmless.
 */
export const CHANGE_OVERLAP_MS = 30_000;

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
  /**
   * Every this often a cycle plans every stream, not only those whose usage changed: a
   * safety net for any change the cursor could miss (default 5 minutes).
   */
  readonly fullScanEveryMs?: number;
  /**
   * At most this many pushes in flight (default 1,000: a second of Stripe's rate limit). Streams
   * due beyond it wait for a later cycle, and are then planned from their newer total: with many
   * busy streams, fewer, larger pushes, and cycles that read only what they can send.
   */
  readonly maxInFlight?: number;
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
  /** The push each in-flight stream is delivering. */
  const delivering = new Map<string, PlannedPush>();
  let stopping = false;
  const active = () => deps.active?.() ?? true;
  const fullScanEveryMs = deps.fullScanEveryMs ?? 300_000;
  const maxInFlight = deps.maxInFlight ?? 1_000;
  // Which streams a cycle plans. Planning reads totals and the push ledger; reading them for
  // every stream every second would cost more than all the rest of the pipeline once history
  // grows. So a cycle plans every stream at the start of a term and every fullScanEveryMs, and
  // otherwise only the streams whose usage (or customer mapping) changed since the previous
  // cycle began reading, plus those the previous cycle had to skip (a push in flight or pending).
  let lastRead = 0;
  // The next cycle is a full scan: set at the start of a term and after anything went wrong.
  let rescan = true;
  let lastFullScan = -Infinity;
  let recheck = new Map<string, ChangedStream>();
  // Streams whose usage waits for a customer mapping, as the cycles that read them last saw (for the gauge).
  const awaiting = new Set<string>();
  const noCycle: CycleSummary = { started: 0, awaitingMapping: 0, tooOld: 0 };
  // What the push ledger says was pushed, read by a full scan and then kept up to date by this
  // process as it records pushes: while it is the pusher, it is the ledger's only writer of new
  // pushes (status changes by others never change what counts as pushed). A new term, or any
  // failure, reads the ledger again.
  let pushedDeltas = new Map<string, bigint>();
  let lastAbsolutes = new Map<string, bigint>();
  /**
   * Pushes left pending (by this process's retries, or found in the ledger), by stream: each cycle
   * resends those that are due (see pending-resend.ts); their streams are skipped until then.
   */
  let pendingPushes = new Map<string, PendingEntry>();
  /** (tenant \0 customer) → Stripe customer id: all of them at a full scan, then what changed since. */
  let mappings = new Map<string, string>();
  const readPushLedger = async () => {
    const statuses = settledStatuses(deps.sink.shadow);
    const [deltas, absolutes, pending] = await Promise.all([deps.pushes.pushedDeltas(statuses), deps.pushes.lastAbsolutes(statuses), deps.pushes.list({ status: 'pending' })]);
    pushedDeltas = deltas;
    lastAbsolutes = absolutes;
    pendingPushes = new Map(pending.map((p) => [streamKeyString(p), { push: p, createdAt: p.createdAt, attempts: p.attempts, lastAttemptAt: p.updatedAt }]));
    // A push being delivered may not be in the ledger yet (shadow mode writes it once sent).
    for (const push of delivering.values()) recorded(push);
  };
  const recorded = (push: PlannedPush) => {
    if (push.mode === 'delta') pushedDeltas.set(streamKeyString(push), push.pushedTo);
    else lastAbsolutes.set(`${streamKeyString(push)}\u0000${push.windowStart}`, push.pushedTo);
  };

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
        if (outcome.kind === 'retry') pendingPushes.set(streamKeyString(push), { push, createdAt, attempts, lastAttemptAt: deps.clock() });
        else pendingPushes.delete(streamKeyString(push));
        exportPending();
        return;
      }
      await deps.pushes.record(push, 'pending', { attempts, createdAt, now: deps.clock(), lastError: outcome.reason });
      await sleep(backoffDelay(attempts));
    }
  };

  const launch = (push: PlannedPush, createdAt: number, attempts: number) => {
    const key = streamKeyString(push);
    const task = deliver(push, createdAt, attempts)
      .catch((err) => {
        log.error({ err, identifier: push.identifier }, 'push delivery stopped; it stays pending');
        // What the ledger holds for it is uncertain now: read it again before planning.
        rescan = true;
      })
      .finally(() => {
        inFlight.delete(key);
        delivering.delete(key);
      });
    inFlight.set(key, task);
    delivering.set(key, push);
  };

  /** Resends the pending pushes that are due (same identifier and timestamp); holds those pending past the resend horizon. */
  const resendDuePending = async () => {
    const now = deps.clock();
    for (const [key, p] of pendingPushes) {
      if (inFlight.has(key) || !active()) continue;
      const decision = pendingDecision(p, now, maxAttempts);
      if (decision === 'hold') {
        await hold(p.push, p.createdAt, p.attempts);
        pendingPushes.delete(key);
      } else if (decision === 'resend' && inFlight.size < maxInFlight) {
        launch(p.push, p.createdAt, p.attempts);
      }
    }
  };
  const hold = (push: PlannedPush, createdAt: number, attempts: number) =>
    deps.pushes.record(push, 'held', {
      attempts,
      createdAt,
      now: deps.clock(),
      lastError: 'pending for more than 24 h: Stripe may no longer recognise its identifier; verify with `meterline reconcile` before resending',
    });
  const exportPending = () => {
    const stats = pendingStats(pendingPushes.values(), deps.clock());
    deps.metrics?.pendingPushes.set(stats.count);
    deps.metrics?.oldestPendingAge.set(stats.oldestAgeMs / 1000);
  };

  /** One pass: plan the streams that are due a look (see lastRead), record and launch the pushes that are due. */
  const planAndLaunch = async (): Promise<CycleSummary> => {
    const meters = [...deps.meters().values()].filter((m) => m.stripe !== null);
    const deltaMeters = meters.filter((m) => m.stripe!.mode === 'delta');
    const absoluteMeters = meters.filter((m) => m.stripe!.mode === 'absolute');
    const readStart = deps.clock();
    const full = rescan || readStart - lastFullScan >= fullScanEveryMs;
    // A new term, or anything uncertain: totals are read from the whole history once more.
    // (A periodic full scan reads every stream's recent windows only; see stream-store.ts.)
    if (rescan) deps.streams.forget();
    // Consumed here: a failure from now on (this cycle's or a delivery's) sets it again.
    rescan = false;
    let scope: ChangedStream[] | undefined;
    // Due streams this cycle does not plan (in flight, pending, or over maxInFlight): the next one does.
    const deferred = new Map<string, ChangedStream>();
    const defer = (key: string, c: ChangedStream) => {
      const known = deferred.get(key);
      if (!known || c.oldestWindowStart < known.oldestWindowStart) deferred.set(key, c);
    };
    // With more deferred streams than pushes it may start, a cycle serves those and does not
    // read changes: its cursor then stays put, so later changes are seen later, never missed.
    const readChanges = full || recheck.size < maxInFlight - inFlight.size;
    if (!full) {
      // Streams deferred last time first: they have waited longest.
      const due = new Map(recheck);
      const changed = readChanges ? await deps.streams.changedStreams(lastRead - CHANGE_OVERLAP_MS) : [];
      for (const c of changed) {
        const key = streamKeyString(c);
        const known = due.get(key);
        if (!known || c.oldestWindowStart < known.oldestWindowStart) due.set(key, c);
      }
      scope = [];
      for (const [key, c] of due) {
        if (inFlight.has(key) || pendingPushes.has(key) || inFlight.size + scope.length >= maxInFlight) defer(key, c);
        else scope.push(c);
      }
      if (scope.length === 0) {
        recheck = deferred;
        if (readChanges) lastRead = readStart;
        await resendDuePending();
        exportPending();
        return { ...noCycle };
      }
    }
    // Absolute streams are recomputed per billing period from the ledger: only periods from
    // the oldest changed window on.
    const fromTime = scope ? scope.reduce((min, c) => Math.min(min, c.oldestWindowStart), Infinity) : 0;
    const [deltas, absolutes, newMappings] = await Promise.all([
      deps.streams.deltaStreams(deltaMeters.map((m) => m.name), scope),
      deps.streams.absoluteStreams(absoluteMeters.map((m) => m.name), deps.billingAnchorDay ?? 1, scope, fromTime),
      readChanges ? deps.streams.customerMappings(full ? undefined : lastRead - CHANGE_OVERLAP_MS) : undefined,
      full ? readPushLedger() : undefined,
    ]);
    if (full) mappings = newMappings!;
    else for (const [k, v] of newMappings ?? []) mappings.set(k, v);
    const now = deps.clock();
    const summary: CycleSummary = { ...noCycle };
    const plans: [string, PlanResult, ChangedStream][] = [];
    const skip = (key: string, s: { tenant: string; customer: string; meter: string }, windowStart: number) =>
      defer(key, { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: windowStart });
    for (const s of deltas) {
      const key = streamKeyString(s);
      if (inFlight.has(key) || pendingPushes.has(key)) {
        skip(key, s, s.windowStart);
        continue;
      }
      const meter = deps.meters().get(s.meter)!;
      plans.push([
        key,
        planDelta(
          { ...s, eventName: meter.stripe!.eventName, stripeCustomerId: mappings.get(`${s.tenant}\u0000${s.customer}`) ?? null, pushed: pushedDeltas.get(key) ?? 0n },
          now,
        ),
        { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: s.windowStart },
      ]);
    }
    for (const s of absolutes) {
      const key = streamKeyString(s);
      if (inFlight.has(key) || pendingPushes.has(key)) {
        skip(key, s, s.periodStart);
        continue;
      }
      const meter = deps.meters().get(s.meter)!;
      plans.push([
        key,
        planAbsolute(
          {
            ...s,
            eventName: meter.stripe!.eventName,
            stripeCustomerId: mappings.get(`${s.tenant}\u0000${s.customer}`) ?? null,
            periodEnd: billingPeriodOf(s.periodStart, deps.billingAnchorDay ?? 1).end,
            lastPushed: lastAbsolutes.get(`${key}\u0000${s.periodStart}`) ?? null,
          },
          now,
        ),
        { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: s.periodStart },
      ]);
    }
    if (full) awaiting.clear();
    let completed = true;
    for (const [key, plan, stream] of plans) {
      // Planned from what this process read while it was the pusher; if it no longer is,
      // its successor plans afresh (after a grace period longer than this loop can take).
      if (!active()) {
        completed = false;
        break;
      }
      if (plan.kind === 'awaiting_mapping') awaiting.add(key);
      else awaiting.delete(key);
      switch (plan.kind) {
        case 'nothing':
          break;
        case 'awaiting_mapping':
          summary.awaitingMapping += 1;
          break;
        case 'too_old':
          summary.tooOld += 1;
          await deps.pushes.record(plan.push, 'failed', { attempts: 0, createdAt: now, now, lastError: plan.reason });
          recorded(plan.push);
          deps.metrics?.pushes.inc({ meter: plan.push.meter, outcome: 'too_old' });
          break;
        case 'push':
          if (inFlight.has(key) || inFlight.size >= maxInFlight) {
            // Planned again by a later cycle, from the total it has then (one push per stream
            // at a time: another period of an absolute stream may have been launched above).
            defer(key, stream);
            break;
          }
          // Durable intent first: a crash from here on resends this very identifier.
          if (!deps.sink.shadow) await deps.pushes.record(plan.push, 'pending', { attempts: 0, createdAt: now, now });
          // (In shadow mode the row is written once delivered; until then the stream is in flight.)
          recorded(plan.push);
          launch(plan.push, now, 0);
          summary.started += 1;
          break;
        default: {
          const never: never = plan;
          throw new Error(`unhandled plan ${JSON.stringify(never)}`);
        }
      }
    }
    // The next cycle starts from this one's read (a cycle cut short plans everything again).
    recheck = deferred;
    if (completed) {
      if (readChanges) lastRead = readStart;
      if (full) lastFullScan = readStart;
    } else {
      rescan = true;
    }
    await resendDuePending();
    exportPending();
    deps.metrics?.awaitingMapping.set(awaiting.size);
    deps.metrics?.pushBacklog.set(inFlight.size);
    return summary;
  };

  return {
    /**
     * Start-up: pending pushes are resent, with their stored identifier and timestamp, before
     * anything new is computed. One pending for more than 24 h is held instead (listed by
     * reconcile): Stripe may have forgotten its identifier, and a blind resend could bill twice.
     */
    async resendPending(): Promise<{ resent: number; held: number }> {
      if (!active()) return { resent: 0, held: 0 };
      // A new term (or a start): plan every stream next, whatever a previous term saw.
      rescan = true;
      // Pushes this process is delivering right now are not resent (once is enough).
      const pending = (await deps.pushes.list({ status: 'pending' })).filter((p) => !inFlight.has(streamKeyString(p)));
      let held = 0;
      for (const p of pending) {
        if (!active()) break;
        if (deps.clock() - p.createdAt > IDENTIFIER_GUARANTEE_MS) {
          held += 1;
          await hold(p, p.createdAt, p.attempts);
          pendingPushes.delete(streamKeyString(p));
          continue;
        }
        launch(p, p.createdAt, p.attempts);
      }
      await Promise.all(inFlight.values());
      return { resent: pending.length - held, held };
    },

    /** One pass: plan the streams that are due a look, record and launch the pushes that are due. */
    async cycle(): Promise<CycleSummary> {
      if (!active()) return { ...noCycle };
      try {
        return await planAndLaunch();
      } catch (err) {
        rescan = true;
        throw err;
      }
    },

    /**
     * This process stopped being the pusher: what it saw waiting for a mapping is its successor's
     * to report now (a gauge left at its last value would keep an alert on after the fact).
     */
    resign(): void {
      awaiting.clear();
      deps.metrics?.awaitingMapping.set(0);
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
