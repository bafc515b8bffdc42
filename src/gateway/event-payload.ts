import { parse } from 'lossless-json';
import { parseEventLine, validateParsedJson, type LineOptions } from '../domain/ndjson';
import type { Validated } from '../domain/usage-event';
import { cloudEventToRecord } from './cloudevents';

/** The media types POST /v1/events takes. */
export const EVENT_MEDIA_TYPES = ['application/json', 'application/x-ndjson', 'application/cloudevents+json', 'application/cloudevents-batch+json'] as const;
export type EventMediaType = (typeof EVENT_MEDIA_TYPES)[number];

export type PayloadError = { readonly ok: false; readonly status: 400 | 413 | 415; readonly error: string };
/** Per event, in request order: valid (to publish) or rejected with a reason. */
export type Payload = { readonly ok: true; readonly results: Validated[] } | PayloadError;

export function isEventMediaType(type: string): type is EventMediaType {
  return (EVENT_MEDIA_TYPES as readonly string[]).includes(type);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A request body → its events, each validated by the rules of `meterline publish` (the tenant
 * comes from the API key: an event naming another tenant is rejected). A body that cannot be
 * read as a whole (bad JSON, not UTF-8, more than `maxEvents` events) is refused whole; one bad
 * NDJSON line or array element is rejected alone.
 */
export function eventsFromPayload(type: EventMediaType, body: Buffer, opts: { maxEvents: number; lineOptions: LineOptions }): Payload {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return { ok: false, status: 400, error: 'body is not valid UTF-8' };
  }
  if (type === 'application/x-ndjson') {
    const lines = text.split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim() !== '');
    if (lines.length === 0) return { ok: false, status: 400, error: 'body holds no events' };
    if (lines.length > opts.maxEvents) return tooMany(lines.length, opts.maxEvents);
    return { ok: true, results: lines.map((line) => parseEventLine(line, opts.lineOptions)) };
  }
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (err) {
    return { ok: false, status: 400, error: `invalid JSON: ${(err as Error).message}` };
  }
  const batch = type === 'application/cloudevents-batch+json' || (type === 'application/json' && Array.isArray(parsed));
  if (type === 'application/cloudevents-batch+json' && !Array.isArray(parsed)) return { ok: false, status: 400, error: 'a CloudEvents batch must be a JSON array' };
  const items = batch ? (parsed as unknown[]) : [parsed];
  if (items.length === 0) return { ok: false, status: 400, error: 'body holds no events' };
  if (items.length > opts.maxEvents) return tooMany(items.length, opts.maxEvents);
  const cloudEvents = type === 'application/cloudevents+json' || type === 'application/cloudevents-batch+json';
  return { ok: true, results: items.map((item) => (cloudEvents ? fromCloudEvent(item, opts.lineOptions) : fromJson(item, opts.lineOptions))) };
}

function tooMany(n: number, max: number): PayloadError {
  return { ok: false, status: 413, error: `request holds ${n} events; at most ${max} per request` };
}

function fromJson(item: unknown, lineOptions: LineOptions): Validated {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return { ok: false, reason: 'event is not a JSON object' };
  return validateParsedJson(item as Record<string, unknown>, lineOptions);
}

function fromCloudEvent(item: unknown, lineOptions: LineOptions): Validated {
  const mapped = cloudEventToRecord(item);
  return mapped.ok ? validateParsedJson(mapped.record, lineOptions) : mapped;
}
