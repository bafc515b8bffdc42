import type { UsageAlert } from '../adapters/alerts/alert-codec';
import { retryDelayMs, type AlertWebhook } from '../adapters/alerts/alert-webhook';
import type { AlertStore } from '../adapters/clickhouse/alert-store';
import type { Logger } from '../runtime/logger';
import type { Metrics } from '../runtime/metrics';

/** After this many failed attempts an alert waits (as `published`) for the next term to try again. */
export const MAX_WEBHOOK_ATTEMPTS = 12;

export interface AlertDeliveries {
  /** Starts delivering a published alert (again, if it is not already in flight here). */
  enqueue(alert: UsageAlert, attemptsSoFar?: number): void;
  /** Stops retrying and waits for the attempts in flight. */
  stop(): Promise<void>;
}

/**
 * At-least-once webhook delivery: each alert is POSTed until a 2xx, with backoff and jitter,
 * then recorded as `delivered`. A crash between the 2xx and that record sends it again at the
 * next term, under the same alert id: receivers dedupe by the Meterline-Alert-Id header.
 */
export function createAlertDeliveries(deps: { webhook: AlertWebhook; alerts: AlertStore; clock: () => number; random: () => number; logger: Logger; metrics?: Metrics }): AlertDeliveries {
  const log = deps.logger.child({ module: 'alert-webhook' });
  const inFlight = new Map<string, Promise<void>>();
  const timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  let stopped = false;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const entry = { timer: setTimeout(() => done(), ms), wake: () => done() };
      const done = () => {
        clearTimeout(entry.timer);
        timers.delete(entry);
        resolve();
      };
      timers.add(entry);
    });

  const deliver = async (alert: UsageAlert, attemptsSoFar: number) => {
    for (let attempt = attemptsSoFar + 1; !stopped && attempt <= attemptsSoFar + MAX_WEBHOOK_ATTEMPTS; attempt += 1) {
      const outcome = await deps.webhook.send(alert);
      deps.metrics?.alertWebhookDeliveries.inc({ outcome: outcome.ok ? 'delivered' : 'failed' });
      if (outcome.ok) {
        await deps.alerts.record([alert], 'delivered', { now: deps.clock(), deliveryAttempts: attempt });
        return;
      }
      log.warn({ alertId: alert.alertId, attempt, error: outcome.error }, 'alert webhook delivery failed; retrying with backoff');
      if (attempt % 4 === 0) await deps.alerts.record([alert], 'published', { now: deps.clock(), deliveryAttempts: attempt, lastError: outcome.error }).catch(() => undefined);
      await sleep(retryDelayMs(attempt, deps.random));
    }
  };

  return {
    enqueue(alert, attemptsSoFar = 0) {
      if (stopped || inFlight.has(alert.alertId)) return;
      const p = deliver(alert, attemptsSoFar)
        .catch((err) => log.error({ err, alertId: alert.alertId }, 'alert webhook delivery stopped; retried at the next term'))
        .finally(() => inFlight.delete(alert.alertId));
      inFlight.set(alert.alertId, p);
    },
    async stop() {
      stopped = true;
      for (const t of [...timers]) t.wake();
      await Promise.all(inFlight.values());
    },
  };
}
