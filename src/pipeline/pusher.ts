import type { PushStore, PushRecord } from '../adapters/clickhouse/push-store';
import type { StreamStore } from '../adapters/clickhouse/stream-store';
import type { BillingSink } from '../ports/billing-sink';
import type { MeterCatalog } from '../domain/meters';
import { streamKey } from '../domain/keys';
import { RESEND_HORIZON_MS } from '../domain/push-plan';
import { addDue, finishCycle, initialSchedule, mayLaunch, oldestInScope, requestRescan, scopeCycle, startCycle, type DueStream } from '../domain/push-schedule';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import type { ChangeSubscription } from './change-feed';
import { createDelivery } from './push-delivery';
import { createPlanner } from './push-planner';

/** Streams planned between two turns of the event loop (see the planning loop). */
const PLANS_PER_TURN = 1_000;

/** Stripe keeps identifiers unique for at least 24 h: past that, a resend could double-bill. */
export const IDENTIFIER_GUARANTEE_MS = RESEND_HORIZON_MS;

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
  /**
   * The changes this process's own ingest stored, in process (change-feed.ts): the change record
   * is then read for other workers' changes only. Absent: every change is read from the record.
   */
  readonly ownChanges?: ChangeSubscription;
}

export interface CycleSummary {
  started: number;
  awaitingMapping: number;
  tooOld: number;
  /** Streams due that this cycle left to the next (over maxInFlight, or busy): 0 when it planned everything due. */
  deferred: number;
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
  const maxAttempts = deps.maxAttempts ?? 12;
  const active = () => deps.active?.() ?? true;
  const limits = { fullScanEveryMs: deps.fullScanEveryMs ?? 300_000, maxInFlight: deps.maxInFlight ?? 1_000 };
  // Which streams the next cycle plans: see domain/push-schedule.ts.
  let schedule = initialSchedule();
  const delivery = createDelivery({
    ...deps,
    maxAttempts,
    maxInFlight: limits.maxInFlight,
    active,
    // What the ledger holds for the push is uncertain now: read it again before planning.
    onUncertain: () => void (schedule = requestRescan(schedule)),
  });
  // Streams whose usage waits for a customer mapping, as the cycles that read them last saw (for the gauge).
  const awaiting = new Set<string>();
  const noCycle: CycleSummary = { started: 0, awaitingMapping: 0, tooOld: 0, deferred: 0 };
  const planner = createPlanner({ pushes: deps.pushes, shadow: deps.sink.shadow, meters: deps.meters, billingAnchorDay: deps.billingAnchorDay ?? 1, delivery });

  /**
   * Streams changed since `since`: this worker's own from the feed, taken before anything is read
   * (a unit stored later is the next cycle's), and the other workers' from the change record.
   * (A cycle that fails after this rescans every stream next: nothing taken is lost.)
   */
  const readChanges = async (since: number): Promise<DueStream[]> => {
    const own = deps.ownChanges?.take() ?? [];
    try {
      return [...own, ...(await deps.streams.changedStreams(since, deps.ownChanges?.writer))];
    } catch (err) {
      deps.ownChanges?.restore(own);
      throw err;
    }
  };

  /** One pass: plan the streams that are due a look (see push-schedule.ts), record and launch the pushes that are due. */
  const planAndLaunch = async (): Promise<CycleSummary> => {
    const meters = [...deps.meters().values()].filter((m) => m.stripe !== null);
    const deltaMeters = meters.filter((m) => m.stripe!.mode === 'delta');
    const absoluteMeters = meters.filter((m) => m.stripe!.mode === 'absolute');
    const started = startCycle(schedule, deps.clock(), delivery.inFlightCount(), limits);
    const { start } = started;
    schedule = started.state;
    // A new term, or anything uncertain: totals are read from the whole history once more.
    // (A periodic full scan reads every stream's recent windows only; see stream-store.ts.)
    if (start.forget) deps.streams.forget();
    let scope: DueStream[] | undefined;
    // Due streams this cycle does not plan (in flight, pending, or over maxInFlight): the next one does.
    let deferred = new Map<string, DueStream>();
    if (start.full) {
      // A full cycle's reads, which begin after this, cover every change so far: all of them
      // after forget(), else those in windows it reads afresh. A change in an older window, from
      // either source or deferred by an earlier cycle, is the next cycle's, which reads its stream
      // whole: this cycle moves the cursor past it (which may stand far back: cycles that only
      // served deferred streams did not move it), and keeps that stream's older span as it was.
      // (Covered changes left for later would be re-planned 1,000 a cycle after a backlog,
      // holding back the streams that need a push.)
      if (start.forget) deps.ownChanges?.take();
      else {
        const kept = deps.streams.keptBefore();
        for (const [key, s] of schedule.deferred) if (s.oldestWindowStart < kept) addDue(deferred, key, s);
        for (const s of await readChanges(start.changesSince)) if (s.oldestWindowStart < kept) addDue(deferred, streamKey(s), s);
      }
    } else {
      const changed = start.readChanges ? await readChanges(start.changesSince) : [];
      ({ scope, deferred } = scopeCycle(schedule.deferred, changed, delivery.busy, delivery.inFlightCount(), limits.maxInFlight));
      if (scope.length === 0) {
        schedule = finishCycle(schedule, start, true, deferred);
        await delivery.resendDuePending();
        delivery.exportPending();
        return { ...noCycle, deferred: deferred.size };
      }
    }
    // One read after another, not all at once: with the embedded engine (one statement at a
    // time), ingest's writes then wait for one of them at most (see span-reads.ts, STREAMS_PER_READ).
    const readBegins = deps.ownChanges?.mark();
    const deltas = await deps.streams.deltaStreams(deltaMeters.map((m) => m.name), scope);
    const absolutes = await deps.streams.absoluteStreams(absoluteMeters.map((m) => m.name), deps.billingAnchorDay ?? 1, scope, oldestInScope(scope));
    // Changes of the scope's streams published before these reads, in windows they read afresh,
    // are in the totals just read: from the recent windows' start, or the stream's oldest change.
    if (scope && readBegins !== undefined) {
      const absolute = new Set(absoluteMeters.map((m) => m.name));
      const fresh = { delta: deps.streams.freshFrom('delta'), absolute: deps.streams.freshFrom('absolute') };
      deps.ownChanges?.covered(scope, readBegins, (s) => Math.min(s.oldestWindowStart, absolute.has(s.meter) ? fresh.absolute : fresh.delta));
    }
    const newMappings = start.readChanges ? await deps.streams.customerMappings(start.full ? undefined : start.changesSince) : undefined;
    if (start.full) await planner.readPushLedger();
    planner.mappingsRead(newMappings, start.full);
    const now = deps.clock();
    const summary: CycleSummary = { ...noCycle };
    if (start.full) awaiting.clear();
    let completed = true;
    let planned = 0;
    for (const [key, plan, stream] of planner.plan(deltas, absolutes, now, deferred)) {
      // A full cycle plans every stream: each plan takes microseconds, all of them took the event
      // loop from ingest for 0.2 s and more. Ingest's callbacks run between every PLANS_PER_TURN.
      planned += 1;
      if (planned % PLANS_PER_TURN === 0) await new Promise((resolve) => setImmediate(resolve));
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
          planner.recorded(plan.push);
          deps.metrics?.pushes.inc({ meter: plan.push.meter, outcome: 'too_old' });
          break;
        case 'push':
          if (!mayLaunch(delivery.isInFlight(key), delivery.inFlightCount(), limits.maxInFlight)) {
            // Planned again by a later cycle, from the total it has then (one push per stream
            // at a time: another period of an absolute stream may have been launched above).
            addDue(deferred, key, stream);
            break;
          }
          // Durable intent first: a crash from here on resends this very identifier.
          if (!deps.sink.shadow) await deps.pushes.record(plan.push, 'pending', { attempts: 0, createdAt: now, now });
          // (In shadow mode the row is written once delivered; until then the stream is in flight.)
          planner.recorded(plan.push);
          delivery.launch(plan.push, now, 0);
          summary.started += 1;
          break;
        default: {
          const never: never = plan;
          throw new Error(`unhandled plan ${JSON.stringify(never)}`);
        }
      }
    }
    // The next cycle starts from this one's read (a cycle cut short plans everything again).
    schedule = finishCycle(schedule, start, completed, deferred);
    summary.deferred = deferred.size;
    // Once a term and every 5 minutes: what a full scan planned, and how long it took under load.
    if (start.full && completed) deps.logger.info({ streams: planned, pushes: summary.started, ms: Math.round(deps.clock() - start.readStart) }, 'full push cycle done');
    await delivery.resendDuePending();
    delivery.exportPending();
    deps.metrics?.awaitingMapping.set(awaiting.size);
    deps.metrics?.pushBacklog.set(delivery.inFlightCount());
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
      schedule = requestRescan(schedule);
      // Pushes this process is delivering right now are not resent (once is enough).
      const pending = (await deps.pushes.list({ status: 'pending' })).filter((p) => !delivery.isInFlight(streamKey(p)));
      let held = 0;
      for (const p of pending) {
        if (!active()) break;
        if (deps.clock() - p.createdAt > IDENTIFIER_GUARANTEE_MS) {
          held += 1;
          await delivery.hold(p, p.createdAt, p.attempts);
          delivery.forgetPending(streamKey(p));
          continue;
        }
        delivery.launch(p, p.createdAt, p.attempts);
      }
      await delivery.settled();
      return { resent: pending.length - held, held };
    },

    /** One pass: plan the streams that are due a look, record and launch the pushes that are due. */
    async cycle(): Promise<CycleSummary> {
      if (!active()) return { ...noCycle };
      try {
        return await planAndLaunch();
      } catch (err) {
        schedule = requestRescan(schedule);
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
    drain: (): Promise<void> => delivery.drain(),

    /** Stop retrying: in-flight pushes end after their current attempt (still pending if undelivered). */
    stop: (): Promise<void> => delivery.stop(),
  };
}

export type Pusher = ReturnType<typeof createPusher>;
export type { PushRecord };
