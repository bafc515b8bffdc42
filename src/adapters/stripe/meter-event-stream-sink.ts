import Stripe from 'stripe';
import type { PlannedPush } from '../../domain/push-plan';
import type { Metrics } from '../../runtime/metrics';
import type { BillingSink, SendOutcome } from './billing-sink';
import { classifyStripeError } from './errors';
import { sendSplittingOnReject } from './stream-batch-split';
import { retry } from '../../runtime/retry';
import { DEFAULT_PAYLOAD_KEYS } from '../../domain/meter-config-check';
import { meterEventPayload, type PayloadKeysFor } from './meter-events-sink';

/** Stripe's limit per stream request. */
export const STREAM_BATCH_MAX = 100;
/** Renew the session this long before it expires (tokens live 15 minutes). */
export const SESSION_RENEW_BEFORE_MS = 60_000;

/**
 * v2 high-throughput mode: pushes are gathered for `lingerMs` (or until 100) and sent in one
 * `meterEventStream.create` call with a session token. Validation is asynchronous at Stripe:
 * an accepted batch means "received"; rejected events come back as meter error-report
 * webhooks, which mark their pushes failed. The session is renewed before it expires, and an
 * expired one is replaced and the batch resent (same identifiers: no double count). A batch
 * refused with a 400 is split to find the invalid events; the others are delivered.
 */
export function createMeterEventStreamSink(stripe: Stripe, opts: { clock?: () => number; lingerMs?: number; metrics?: Metrics; payloadKeys?: PayloadKeysFor } = {}): BillingSink {
  const payloadKeys = opts.payloadKeys ?? (() => DEFAULT_PAYLOAD_KEYS);
  const clock = opts.clock ?? Date.now;
  const linger = opts.lingerMs ?? 20;
  let session: { token: string; expiresAt: number } | null = null;
  let queue: { push: PlannedPush; resolve: (o: SendOutcome) => void }[] = [];
  let timer: NodeJS.Timeout | null = null;

  const token = async (): Promise<string> => {
    if (!session || session.expiresAt - clock() < SESSION_RENEW_BEFORE_MS) {
      const s = await stripe.v2.billing.meterEventSession.create();
      session = { token: s.authentication_token, expiresAt: Date.parse(String(s.expires_at)) };
    }
    return session.token;
  };

  const sendBatch = async (batch: readonly PlannedPush[]): Promise<SendOutcome> => {
    const events = batch.map((p) => ({
      event_name: p.eventName,
      identifier: p.identifier,
      timestamp: new Date(p.timestamp * 1000).toISOString(),
      payload: meterEventPayload(p, payloadKeys(p.eventName)),
    }));
    try {
      // An expired session (early: clock skew, a revoked token) is replaced and the same batch
      // sent once more: same identifiers, no double count. Anything else is the pusher's to retry.
      await retry(
        async () => {
          try {
            await stripe.v2.billing.meterEventStream.create({ events }, { apiKey: await token() });
          } catch (err) {
            const status = (err as { statusCode?: number }).statusCode;
            opts.metrics?.stripeCalls.inc({ status: status ? `${Math.floor(status / 100)}xx` : 'network' });
            throw err;
          }
        },
        { attempts: 2, isRetriable: (err) => err instanceof Stripe.errors.TemporarySessionExpiredError, onRetry: () => void (session = null), delay: () => 0, sleep: async () => undefined },
      );
      opts.metrics?.stripeCalls.inc({ status: '2xx' });
      return { kind: 'reported' };
    } catch (err) {
      return classifyStripeError(err);
    }
  };

  const flush = async () => {
    timer = null;
    while (queue.length > 0) {
      const batch = queue.splice(0, STREAM_BATCH_MAX);
      const outcomes = await sendSplittingOnReject(
        batch.map((b) => b.push),
        sendBatch,
      );
      batch.forEach((b, i) => b.resolve(outcomes[i]!));
    }
  };

  return {
    shadow: false,
    send(push) {
      return new Promise<SendOutcome>((resolve) => {
        queue.push({ push, resolve });
        if (queue.length >= STREAM_BATCH_MAX) void flush();
        else timer ??= setTimeout(() => void flush(), linger);
      });
    },
    async close() {
      if (timer) clearTimeout(timer);
      await flush();
    },
  };
}
