import { cloudEventToRecord } from '../../src/gateway/cloudevents';
import { eventsFromPayload, type EventMediaType } from '../../src/gateway/event-payload';

const NOW = Date.UTC(2026, 10, 29, 12);
const lineOptions = { now: NOW, maxFutureSkewMs: 300_000, tenant: 'acme', tenantSetting: "the API key's tenant" };
const parse = (type: EventMediaType, body: string, maxEvents = 100) => eventsFromPayload(type, Buffer.from(body), { maxEvents, lineOptions });
const ev = (over: Record<string, unknown> = {}) => ({ id: 'e1', customer: 'c1', meter: 'tokens', value: '1.5', timestamp: NOW - 1000, ...over });

describe('POST /v1/events bodies: one event, arrays, NDJSON and CloudEvents', () => {
  it('takes one JSON object or an array, fills the tenant from the key and keeps values exact', () => {
    const one = parse('application/json', JSON.stringify(ev()));
    expect(one).toEqual({ ok: true, results: [{ ok: true, event: { id: 'e1', tenant: 'acme', customer: 'c1', meter: 'tokens', value: '1.5', timestamp: NOW - 1000, properties: {}, source: null } }] });
    // A JSON number with more digits than a double holds keeps every one of them.
    const array = parse('application/json', `[{"id":"a","customer":"c1","meter":"tokens","value":0.100000001,"timestamp":${NOW}},{"id":"b","customer":"c1","meter":"tokens","value":12345678901234567890.123456789,"timestamp":${NOW}}]`);
    expect(array.ok && array.results.map((r) => r.ok && r.event.value)).toEqual(['0.100000001', '12345678901234567890.123456789']);
  });

  it('validates each event as `meterline publish` does and rejects one naming another tenant, alone', () => {
    const r = parse('application/json', JSON.stringify([ev(), ev({ id: 'e2', tenant: 'globex' }), ev({ id: 'e3', value: '-1' }), ev({ id: 'e4', extra: 1 }), 'text']));
    expect(r.ok && r.results.map((x) => (x.ok ? 'ok' : x.reason))).toEqual([
      'ok',
      `tenant "globex" does not match the API key's tenant "acme"`,
      'value is negative: usage values must be zero or more',
      'unknown field "extra"',
      'event is not a JSON object',
    ]);
  });

  it('reads NDJSON line by line: a bad line is rejected alone, blank lines are skipped', () => {
    const r = parse('application/x-ndjson', `${JSON.stringify(ev())}\r\n\n{"id": broken\n${JSON.stringify(ev({ id: 'e2' }))}\n`);
    expect(r.ok && r.results.map((x) => (x.ok ? x.event.id : x.reason.slice(0, 12)))).toEqual(['e1', 'invalid JSON', 'e2']);
  });

  it('refuses a body it cannot read as a whole, and more events than allowed', () => {
    expect(parse('application/json', '{"id":')).toMatchObject({ ok: false, status: 400, error: expect.stringMatching(/^invalid JSON/) });
    expect(parse('application/json', '[]')).toEqual({ ok: false, status: 400, error: 'body holds no events' });
    expect(parse('application/x-ndjson', '\n\n')).toEqual({ ok: false, status: 400, error: 'body holds no events' });
    expect(parse('application/cloudevents-batch+json', '{}')).toMatchObject({ ok: false, status: 400 });
    expect(parse('application/json', JSON.stringify([ev(), ev(), ev()]), 2)).toEqual({ ok: false, status: 413, error: 'request holds 3 events; at most 2 per request' });
    expect(eventsFromPayload('application/json', Buffer.from([0x22, 0xc3, 0x28, 0x22]), { maxEvents: 10, lineOptions })).toEqual({ ok: false, status: 400, error: 'body is not valid UTF-8' });
  });

  it('maps CloudEvents: id, source, subject → customer, type → meter, time → timestamp, data.value and data.properties', () => {
    const ce = { specversion: '1.0', id: 'ce-1', source: 'billing-svc', type: 'tokens', subject: 'c9', time: '2026-11-29T11:59:00Z', data: { value: 2.5, properties: { model: 'm1' } } };
    const one = parse('application/cloudevents+json', JSON.stringify(ce));
    expect(one).toEqual({ ok: true, results: [{ ok: true, event: { id: 'ce-1', tenant: 'acme', customer: 'c9', meter: 'tokens', value: '2.5', timestamp: Date.parse(ce.time), properties: { model: 'm1' }, source: 'billing-svc' } }] });
    const batch = parse('application/cloudevents-batch+json', JSON.stringify([ce, { ...ce, id: 'ce-2', tenant: 'globex' }, { ...ce, id: 'ce-3', specversion: '0.3' }]));
    expect(batch.ok && batch.results.map((x) => (x.ok ? x.event.id : x.reason))).toEqual(['ce-1', `tenant "globex" does not match the API key's tenant "acme"`, 'CloudEvent specversion must be "1.0"']);
  });

  it('says which CloudEvent attribute is missing or unusable', () => {
    const ce = { specversion: '1.0', id: 'x', source: 's', type: 'tokens', subject: 'c1', time: '2026-11-29T11:59:00Z', data: { value: '1' } };
    const reason = (over: Record<string, unknown>) => {
      const r = cloudEventToRecord({ ...ce, ...over });
      return r.ok ? 'ok' : r.reason;
    };
    expect(reason({})).toBe('ok');
    expect(reason({ subject: undefined })).toBe('CloudEvent has no subject (the customer)');
    expect(reason({ type: undefined })).toBe('CloudEvent has no type (the meter)');
    expect(reason({ time: undefined })).toBe('CloudEvent has no time (the event time)');
    expect(reason({ data: '1' })).toMatch(/data must be an object/);
    expect(reason({ data: { value: '1', meter: 'x' } })).toBe('CloudEvent data has an unknown field "meter"');
    expect(reason({ data_base64: 'AA==' })).toMatch(/data_base64 is not supported/);
    expect(reason({ datacontenttype: 'text/plain' })).toBe('CloudEvent datacontenttype must be application/json');
    expect(reason({ datacontenttype: 'application/json; charset=utf-8', dataschema: 'https://x', traceparent: 'ignored' })).toBe('ok');
  });
});
