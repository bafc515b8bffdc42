import type http from 'node:http';
import type Stripe from 'stripe';
import type { PushStore } from '../adapters/clickhouse/push-store';
import type { Logger } from '../runtime/logger';
import type { Route } from '../runtime/http-server';
import type { Metrics } from '../runtime/metrics';
import { candidateIdentifiers, parseErrorReport } from '../domain/error-report-match';
import { pacedRead, type ReadPacing } from '../adapters/stripe/read-retry';

export const ERROR_REPORT_TYPES = new Set(['v1.billing.meter.error_report_triggered', 'v1.billing.meter.no_meter_found']);
const MAX_BODY_BYTES = 1024 * 1024;
/** An oversized body is drained up to this much (then the connection is cut). */
const MAX_DRAIN_BYTES = 16 * 1024 * 1024;
/**
 * The event fetch's retries before the report is answered 500 (Stripe then redelivers it): four
 * calls, at least 0.5 s apart, so that the last comes after Stripe's one-second rate window has
 * moved on; at most 3.5 s of waiting in all, within what a webhook sender waits for an answer.
 */
const FETCH_RETRY = { attempts: 4, minDelayMs: 500 } as const;

/** Failures a report counted that no sample named: where to look for them. */
export interface UnexplainedFailures {
  readonly count: number;
  /** Stripe's validation window (ms), or the hour before the report when it gives none. */
  readonly validationStart: number;
  readonly validationEnd: number;
}

/**
 * POST /webhooks/stripe: Stripe's meter error reports (thin events). The signature is checked
 * on the raw body before anything else (a bad one gets 400 and changes nothing); the full event
 * is then fetched from Stripe, and the pushes its samples name (by meter event identifier or by
 * our Idempotency-Key, see error-report-match.ts) are marked failed — for good: a later resend
 * answered "already exists" does not make them reported again. Samples that name no push are
 * logged. A report counts more failures than it samples: the rest are counted in
 * meterline_stripe_error_report_unmatched_total and handed to `onUnexplained` (run: a reconcile
 * of the report's window).
 *
 * The event fetch is a Stripe read like reconcile's: it takes `pacing`'s share of the rate limit
 * and is retried while Stripe answers 429 or fails transiently (a worker pushing at its limit
 * must not turn every report into a 500). Any failure left is a 500, so that Stripe redelivers.
 */
export function errorReportRoute(deps: {
  stripe: Stripe;
  webhookSecret: string;
  pushes: PushStore;
  clock: () => number;
  logger: Logger;
  metrics?: Metrics;
  onUnexplained?: (u: UnexplainedFailures) => void;
  /** The reads' share of the account's rate limit (run: reconcile's limiter). */
  pacing?: ReadPacing;
}): Route {
  const log = deps.logger.child({ module: 'webhooks' });
  return async (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    const body = declared > MAX_BODY_BYTES ? null : await readBody(req, MAX_BODY_BYTES);
    if (body === null) {
      refuseTooLarge(req, res);
      return;
    }
    const signature = req.headers['stripe-signature'];
    let notification: Awaited<ReturnType<Stripe['parseEventNotificationAsync']>>;
    try {
      notification = await deps.stripe.parseEventNotificationAsync(body, typeof signature === 'string' ? signature : '', deps.webhookSecret);
    } catch {
      log.warn('webhook refused: bad or missing Stripe-Signature');
      res.writeHead(400, { 'content-type': 'text/plain' }).end('invalid signature\n');
      return;
    }
    if (!ERROR_REPORT_TYPES.has(notification.type)) {
      res.writeHead(200).end('ignored\n');
      return;
    }
    const event = (await pacedRead<unknown>(() => notification.fetchEvent(), { ...FETCH_RETRY, ...deps.pacing })) as { data?: unknown };
    const report = parseErrorReport(event.data);
    const candidates = report.samples.map((s) => candidateIdentifiers(s.requestIdentifier));
    const records = candidates.length > 0 ? await deps.pushes.list({ identifiers: [...new Set(candidates.flat())] }) : [];
    const byIdentifier = new Map(records.map((r) => [r.identifier, r]));
    const marked = new Set<string>();
    for (const [i, sample] of report.samples.entries()) {
      const push = candidates[i]!.map((id) => byIdentifier.get(id)).find((r) => r !== undefined);
      if (!push) {
        log.warn({ code: sample.code, requestIdentifier: sample.requestIdentifier, message: sample.message }, 'Stripe error report sample names no push of this ledger');
        continue;
      }
      if (marked.has(push.identifier)) continue;
      marked.add(push.identifier);
      const lastError = `stripe error report: ${sample.code}${sample.message ? `: ${sample.message}` : ''}`;
      await deps.pushes.record(push, 'failed', { attempts: push.attempts, createdAt: push.createdAt, now: deps.clock(), lastError, final: true });
    }
    const unexplained = Math.max(0, report.errorCount - marked.size);
    log.warn({ type: notification.type, errorCount: report.errorCount, samples: report.samples.length, marked: marked.size, unexplained }, 'Stripe meter error report: sampled pushes marked failed');
    if (unexplained > 0) {
      deps.metrics?.errorReportUnmatched.inc(unexplained);
      const end = report.validationEnd ?? deps.clock();
      deps.onUnexplained?.({ count: unexplained, validationStart: report.validationStart ?? end - 3_600_000, validationEnd: end });
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ marked_failed: marked.size, unexplained }));
  };
}

/** The body as text, or null as soon as it exceeds `limit` (the rest is left to refuseTooLarge). */
function readBody(req: http.IncomingMessage, limit: number): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.off('data', onData);
        resolve(null);
      } else chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * 413, then the connection is closed. What the client is still sending is read and dropped (up
 * to a bound) rather than reset mid-upload, so that it sees the 413 instead of a broken pipe.
 */
function refuseTooLarge(req: http.IncomingMessage, res: http.ServerResponse): void {
  let dropped = 0;
  req.on('data', (c: Buffer) => {
    dropped += c.length;
    if (dropped > MAX_DRAIN_BYTES) req.destroy();
  });
  req.on('error', () => undefined);
  req.resume();
  res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('payload too large\n');
}
