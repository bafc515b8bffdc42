import type { UsageAlert } from '../adapters/alerts/alert-codec';
import type { AlertTopic } from '../adapters/alerts/alert-topic';
import type { AlertStore } from '../adapters/clickhouse/alert-store';
import type { PeriodTotalsReader } from '../adapters/clickhouse/period-totals';
import type { StreamKey } from '../adapters/clickhouse/stream-scope';
import { newCrossings } from '../domain/alert-crossings';
import type { AllotmentCatalog } from '../domain/allotments';
import { formatDecimal } from '../domain/decimal';
import { streamKey } from '../domain/keys';
import { addDue, type DueStream } from '../domain/push-schedule';
import { billingPeriodOf } from '../domain/windows';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';
import type { AlertDeliveries } from './alert-deliveries';
import type { ChangeSubscription } from './change-feed';

/** A cycle asks for streams changed since this long before the previous one began reading (late-visible writes, clock skew). */
export const ALERT_CHANGE_OVERLAP_MS = 30_000;
/** A pending alert is looked for on the topic from this long before it was recorded (clocks of other workers). */
export const PENDING_SCAN_MARGIN_MS = 5 * 60_000;

/** Where a chaos run may SIGKILL the worker (CHAOS_ALERT_KILL_AT): the two gaps of the protocol. */
export type AlertFaultPoint = 'after_pending' | 'after_publish';

export interface AlerterDeps {
  readonly allotments: AllotmentCatalog;
  /** Streams whose usage changed since `since` (ms), with the oldest window that changed; `exceptWriter`'s changes left out. */
  readonly changedStreams: (since: number, exceptWriter?: string) => Promise<readonly (StreamKey & { oldestWindowStart: number })[]>;
  /** This process's own ingest's changes, in process (change-feed.ts); absent: all read through changedStreams. */
  readonly ownChanges?: ChangeSubscription;
  /** Exact period totals: of the changed streams each cycle (their recent windows, when the older span is kept), of every stream at a term's start. */
  readonly periodTotals: PeriodTotalsReader;
  readonly alerts: AlertStore;
  readonly topic: AlertTopic;
  readonly deliveries: AlertDeliveries | null;
  readonly billingAnchorDay: number;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly faultPoint?: (point: AlertFaultPoint) => void;
}

export interface Alerter {
  /**
   * A new term (start-up, or leadership gained): settle the alerts a predecessor left pending
   * (published only if not already on the topic), resume webhook deliveries, then check every
   * stream's current period once.
   */
  startTerm(): Promise<void>;
  /** Re-checks only the streams whose usage changed since the previous check. */
  cycle(): Promise<void>;
}

export function createAlerter(deps: AlerterDeps): Alerter {
  const log = deps.logger.child({ module: 'alerter' });
  let lastRead: number | null = null;

  /**
   * The protocol that makes an alert exactly-once on the topic:
   *  1. `pending` is recorded durably first: from here a crash leaves a trace the next term finds;
   *  2. publish (idempotent producer, acks = all, keyed by alert id);
   *  3. `published`. A crash between 1 and 3 is settled by startTerm: the topic is read for the
   *     alert, and it is published only if absent.
   */
  const emit = async (alerts: readonly UsageAlert[]) => {
    if (alerts.length === 0) return;
    await deps.alerts.record(alerts, 'pending', { now: deps.clock() });
    deps.faultPoint?.('after_pending');
    await publish(alerts);
  };
  const publish = async (alerts: readonly UsageAlert[]) => {
    if (alerts.length === 0) return;
    await deps.topic.publish(alerts);
    deps.faultPoint?.('after_publish');
    await deps.alerts.record(alerts, 'published', { now: deps.clock() });
    for (const a of alerts) {
      deps.metrics?.alertsEmitted.inc({ meter: a.meter, threshold: formatDecimal(a.thresholdUnits) });
      deps.deliveries?.enqueue(a);
    }
    log.info({ alerts: alerts.length }, 'usage alerts published');
  };

  const check = async (scope: readonly DueStream[] | undefined, fromTime: number) => {
    const totals = await deps.periodTotals.read({ meters: deps.allotments.meters, scope, fromTime });
    const recorded = await deps.alerts.recordedIds(scope, billingPeriodOf(fromTime, deps.billingAnchorDay).start);
    const detectedAt = deps.clock();
    await emit(newCrossings(deps.allotments, totals, recorded).map((c) => ({ ...c, detectedAt })));
  };

  return {
    async startTerm() {
      const pending = await deps.alerts.list('pending');
      if (pending.length > 0) {
        const since = pending.reduce((m, a) => Math.min(m, a.detectedAt), Infinity) - PENDING_SCAN_MARGIN_MS;
        const onTopic = await deps.topic.findPublished(new Set(pending.map((a) => a.alertId)), since);
        const found = pending.filter((a) => onTopic.has(a.alertId));
        await deps.alerts.record(found, 'published', { now: deps.clock() });
        for (const a of found) deps.deliveries?.enqueue(a);
        const missing = pending.filter((a) => !onTopic.has(a.alertId));
        await publish(missing);
        log.info({ pending: pending.length, alreadyOnTopic: found.length, published: missing.length }, 'pending alerts left by a previous term settled');
      }
      if (deps.deliveries) for (const a of await deps.alerts.list('published')) deps.deliveries.enqueue(a, a.deliveryAttempts);
      lastRead = deps.clock();
      // What a previous term kept may be stale (other alerters read the changes since): every
      // stream's current period is read whole once more, and kept.
      deps.periodTotals.forget();
      await check(undefined, lastRead);
    },

    async cycle() {
      if (lastRead === null) throw new Error('alerter: cycle before startTerm');
      const since = lastRead - ALERT_CHANGE_OVERLAP_MS;
      const readAt = deps.clock();
      const watched = new Set(deps.allotments.meters);
      // This worker's own changes are taken before anything is read (a unit stored later is the
      // next cycle's) and given back if the cycle fails, as the cursor then stays where it was.
      const own = deps.ownChanges?.take() ?? [];
      try {
        const changed = [...own, ...(await deps.changedStreams(since, deps.ownChanges?.writer))].filter(
          (s) => watched.has(s.meter) && deps.allotments.allotmentFor(s.tenant, s.customer, s.meter),
        );
        if (changed.length > 0) {
          // Each stream once, from its oldest changed window: the read of a stream whose older
          // span is kept, and whose change is recent, covers recent windows only.
          const due = new Map<string, DueStream>();
          for (const s of changed) addDue(due, streamKey(s), { tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: s.oldestWindowStart });
          const scope = [...due.values()];
          await check(scope, scope.reduce((m, s) => Math.min(m, s.oldestWindowStart), Infinity));
        }
      } catch (err) {
        deps.ownChanges?.restore(own);
        throw err;
      }
      lastRead = readAt;
    },
  };
}
