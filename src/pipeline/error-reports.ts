import type http from 'node:http';
import type Stripe from 'stripe';
import type { PushStore } from '../adapters/clickhouse/push-store';
import type { Logger } from '../runtime/logger';
import type { Route } from '../runtime/http-server';

export const ERROR_REPORT_TYPES = new Set(['v1.billing.meter.error_report_triggered', 'v1.billing.meter.no_meter_found']);
const MAX_BODY_BYTES = 1024 * 1024;
/** An oversized body is drained up to this much (then the connection is cut). */
const MAX_DRAIN_BYTES = 16 * 1024 * 1024;

interface ErrorReportData {
  reason?: { error_types?: { code?: string; sample_errors?: { error_message?: string; request?: { identifier?: string } }[] }[] };
}

/** (identifier → error code) named by an error report's samples. */
export function identifiersInReport(data: unknown): Map<string, string> {
  const found = new Map<string, string>();
  for (const t of (data as ErrorReportData | undefined)?.reason?.error_types ?? []) {
    for (const s of t.sample_errors ?? []) {
      const id = s.request?.identifier;
      if (id) found.set(id, `${t.code ?? 'unknown_error'}${s.error_message ? `: ${s.error_message}` : ''}`);
    }
  }
  return found;
}

/**
 * POST /webhooks/stripe: Stripe's meter error reports (thin events). The signature is checked
 * on the raw body before anything else (a bad one gets 400 and changes nothing); the full event
 * is then fetched from Stripe, and the pushes it names are marked failed with the error code.
 */
export function errorReportRoute(deps: { stripe: Stripe; webhookSecret: string; pushes: PushStore; clock: () => number; logger: Logger }): Route {
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
    const event = (await notification.fetchEvent()) as unknown as { data?: unknown };
    const named = identifiersInReport(event.data);
    const records = named.size > 0 ? await deps.pushes.list({ identifiers: [...named.keys()] }) : [];
    for (const r of records) {
      await deps.pushes.record(r, 'failed', { attempts: r.attempts, createdAt: r.createdAt, now: deps.clock(), lastError: `stripe error report: ${named.get(r.identifier)}` });
    }
    log.warn({ type: notification.type, marked: records.length, named: named.size }, 'Stripe meter error report: pushes marked failed');
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ marked_failed: records.length }));
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
