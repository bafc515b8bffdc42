import { isLosslessNumber, parse } from 'lossless-json';
import { validateEvent, type Validated, type ValidationOptions } from './usage-event';

/** Lines longer than this are rejected unread: no event is legitimately a megabyte. */
export const MAX_LINE_BYTES = 1024 * 1024;

export interface LineOptions extends ValidationOptions {
  /** `--tenant`: fills a missing tenant; an event naming another tenant is rejected. */
  readonly tenant?: string;
  /** How a rejection names the tenant setting (default `--tenant`). */
  readonly tenantSetting?: string;
}

/**
 * One NDJSON line → a valid event or a reason. Numbers are parsed losslessly (a JSON number
 * such as 0.10000000000000000001 keeps every digit), so `value` is exact whatever its form.
 */
export function parseEventLine(line: string, opts: LineOptions): Validated {
  if (Buffer.byteLength(line, 'utf8') > MAX_LINE_BYTES) return { ok: false, reason: `line is longer than ${MAX_LINE_BYTES} bytes` };
  let raw: unknown;
  try {
    raw = parse(line);
  } catch (err) {
    return { ok: false, reason: `invalid JSON: ${(err as Error).message}` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { ok: false, reason: 'line is not a JSON object' };
  return validateParsedJson(raw as Record<string, unknown>, opts);
}

/**
 * One JSON object parsed with lossless-json (an NDJSON line, or an element of a JSON array sent
 * to the HTTP gateway) → a valid event or a reason: the rules of `meterline publish`.
 */
export function validateParsedJson(raw: Readonly<Record<string, unknown>>, opts: LineOptions): Validated {
  const rec = { ...raw };
  for (const field of ['value', 'timestamp'] as const) {
    const v = rec[field];
    if (isLosslessNumber(v)) rec[field] = v.value;
  }
  // Any other number (in properties, say) stays a LosslessNumber and fails validation as "not a string".
  return validateRecord(rec, opts);
}

/**
 * The rules of `meterline publish` for one event-shaped record, wherever it comes from (an
 * NDJSON line, or an object handed to the publisher SDK): the tenant default, then validateEvent.
 */
export function validateRecord(raw: Readonly<Record<string, unknown>>, opts: LineOptions): Validated {
  let rec = raw;
  if (opts.tenant !== undefined) {
    if (rec.tenant === undefined) rec = { ...rec, tenant: opts.tenant };
    else if (rec.tenant !== opts.tenant) {
      return { ok: false, reason: `tenant ${JSON.stringify(rec.tenant)} does not match ${opts.tenantSetting ?? '--tenant'} ${JSON.stringify(opts.tenant)}` };
    }
  }
  return validateEvent(rec, opts);
}
