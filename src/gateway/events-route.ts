import type http from 'node:http';
import type { UsageEvent } from '../domain/usage-event';
import type { Logger } from '../runtime/logger';
import type { GatewayMetrics } from '../runtime/metrics';
import { mediaType, readBody } from './body';
import { EVENT_MEDIA_TYPES, eventsFromPayload, isEventMediaType } from './event-payload';
import { sendError, sendErrorAndClose, sendJson } from './responses';

export interface EventsRouteDeps {
  readonly publish: (events: readonly UsageEvent[]) => Promise<void>;
  readonly clock: () => number;
  readonly maxFutureSkewMs: number;
  readonly maxBodyBytes: number;
  readonly maxEvents: number;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export type EventResult = { index: number; status: 'accepted'; id: string } | { index: number; status: 'rejected'; reason: string };

/**
 * POST /v1/events for an authenticated tenant. The valid events are acknowledged by Kafka
 * (acks from all in-sync replicas) before the answer: 202 when all were accepted, 207 with a
 * result per event when some were rejected, 400 when none was valid. If Kafka fails, 503 and
 * nothing is reported accepted (sending the same request again is safe: ingest dedupes on id).
 */
export async function postEvents(req: http.IncomingMessage, res: http.ServerResponse, tenant: string, deps: EventsRouteDeps): Promise<void> {
  const { type, charset } = mediaType(req.headers['content-type']);
  if (!isEventMediaType(type) || (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')) {
    sendErrorAndClose(res, 415, `Content-Type must be one of ${EVENT_MEDIA_TYPES.join(', ')} (UTF-8)`);
    return;
  }
  const body = await readBody(req, deps.maxBodyBytes);
  if (!body.ok) {
    sendErrorAndClose(res, 413, `request body is larger than ${deps.maxBodyBytes} bytes`);
    return;
  }
  const payload = eventsFromPayload(type, body.body, {
    maxEvents: deps.maxEvents,
    lineOptions: { now: deps.clock(), maxFutureSkewMs: deps.maxFutureSkewMs, tenant, tenantSetting: "the API key's tenant" },
  });
  if (!payload.ok) {
    sendError(res, payload.status, payload.error);
    return;
  }
  const valid = payload.results.flatMap((r) => (r.ok ? [r.event] : []));
  const rejected = payload.results.length - valid.length;
  try {
    await deps.publish(valid);
  } catch (err) {
    deps.metrics.events.inc({ outcome: 'failed' }, valid.length);
    deps.metrics.events.inc({ outcome: 'rejected' }, rejected);
    deps.logger.error({ err, events: valid.length }, 'publishing to Kafka failed');
    sendError(res, 503, 'the events could not be published to Kafka: none is confirmed accepted; send the request again (copies are deduplicated by id)', { 'retry-after': '1' });
    return;
  }
  deps.metrics.events.inc({ outcome: 'accepted' }, valid.length);
  deps.metrics.events.inc({ outcome: 'rejected' }, rejected);
  const results: EventResult[] = payload.results.map((r, index) => (r.ok ? { index, status: 'accepted', id: r.event.id } : { index, status: 'rejected', reason: r.reason }));
  const status = rejected === 0 ? 202 : valid.length === 0 ? 400 : 207;
  sendJson(res, status, { accepted: valid.length, rejected, results });
}
