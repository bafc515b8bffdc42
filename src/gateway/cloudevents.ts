/**
 * CloudEvents 1.0 (structured mode, JSON) → a meterline event record, before validation:
 *
 *   id      → id          source  → source      subject → customer
 *   type    → meter       time    → timestamp   data.value → value
 *   data.properties → properties                 tenant (extension attribute, optional) → tenant
 *
 * `type` is the meter's name (so it follows meter naming: letters, digits, "_", ".", ":", "-",
 * e.g. `api_calls` or `com.example.tokens`). `data` is a JSON object with `value` and optionally
 * `properties`, nothing else; `datacontenttype`, when given, is application/json. `data_base64`
 * is refused. Other attributes (`dataschema`, extensions) are accepted and ignored.
 */
export type MappedCloudEvent = { readonly ok: true; readonly record: Record<string, unknown> } | { readonly ok: false; readonly reason: string };

const DATA_FIELDS = new Set(['value', 'properties']);

export function cloudEventToRecord(ce: unknown): MappedCloudEvent {
  if (ce === null || typeof ce !== 'object' || Array.isArray(ce)) return fail('CloudEvent is not a JSON object');
  const e = ce as Record<string, unknown>;
  if (e.specversion !== '1.0') return fail('CloudEvent specversion must be "1.0"');
  if (e.data_base64 !== undefined) return fail('CloudEvent data must be JSON (data_base64 is not supported)');
  if (e.datacontenttype !== undefined && !(typeof e.datacontenttype === 'string' && /^application\/json\s*(;|$)/i.test(e.datacontenttype))) {
    return fail('CloudEvent datacontenttype must be application/json');
  }
  if (e.subject === undefined || e.subject === null) return fail('CloudEvent has no subject (the customer)');
  if (e.type === undefined || e.type === null) return fail('CloudEvent has no type (the meter)');
  if (e.time === undefined || e.time === null) return fail('CloudEvent has no time (the event time)');
  const data = e.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return fail('CloudEvent data must be an object with value (and optionally properties)');
  for (const key of Object.keys(data)) {
    if (!DATA_FIELDS.has(key)) return fail(`CloudEvent data has an unknown field ${JSON.stringify(key.slice(0, 64))}`);
  }
  const d = data as Record<string, unknown>;
  const record: Record<string, unknown> = { id: e.id, customer: e.subject, meter: e.type, value: d.value, timestamp: e.time };
  if (e.source !== undefined) record.source = e.source;
  if (d.properties !== undefined) record.properties = d.properties;
  if (e.tenant !== undefined) record.tenant = e.tenant;
  return { ok: true, record };
}

function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
