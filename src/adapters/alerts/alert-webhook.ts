import { ALERT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from '../../domain/webhook-signature';
import { alertJson, type UsageAlert } from './alert-codec';

export type WebhookOutcome = { ok: true } | { ok: false; error: string };

export interface AlertWebhook {
  /** One POST of the alert; a 2xx is delivered, anything else (or no answer in time) is not. */
  send(alert: UsageAlert): Promise<WebhookOutcome>;
}

/**
 * Signed JSON POSTs to the operator's URL. The secret signs; it is never part of a header, a
 * log line or an error message (errors carry the status or the network error's code only).
 */
export function createAlertWebhook(opts: { url: string; secret: string; clock: () => number; timeoutMs?: number }): AlertWebhook {
  return {
    async send(alert) {
      const body = alertJson(alert);
      const timestamp = Math.floor(opts.clock() / 1000);
      try {
        const res = await fetch(opts.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'meterline-alerts/1',
            [ALERT_ID_HEADER]: alert.alertId,
            [TIMESTAMP_HEADER]: String(timestamp),
            [SIGNATURE_HEADER]: signWebhook(opts.secret, timestamp, body),
          },
          body,
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
        });
        await res.arrayBuffer().catch(() => undefined);
        return res.ok ? { ok: true } : { ok: false, error: `HTTP ${res.status}` };
      } catch (err) {
        const e = err as { name?: string; cause?: { code?: string } };
        return { ok: false, error: e.cause?.code ?? e.name ?? 'network error' };
      }
    },
  };
}

/** Exponential backoff with full jitter: attempt 1 waits up to `baseMs`, doubling, capped at `capMs`. */
export function retryDelayMs(attempt: number, random: () => number, baseMs = 500, capMs = 60_000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}
