import { parseEventLine, MAX_LINE_BYTES } from '../../src/domain/ndjson';

const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const opts = { now: NOW, maxFutureSkewMs: 300_000 };
const good = { id: 'e1', tenant: 't1', customer: 'c1', meter: 'api_calls', value: '1.5', timestamp: NOW - 1000 };
const line = (o: unknown) => JSON.stringify(o);

function reason(l: string, extra: Partial<typeof opts> & { tenant?: string } = {}): string {
  const r = parseEventLine(l, { ...opts, ...extra });
  if (r.ok) throw new Error(`expected a rejection for ${l.slice(0, 80)}`);
  return r.reason;
}

describe('an NDJSON line becomes an event or a reason', () => {
  it('accepts a well-formed event and canonicalises its value', () => {
    const r = parseEventLine(line({ ...good, value: '001.500' }), opts);
    expect(r).toEqual({ ok: true, event: { ...good, value: '1.5', properties: {}, source: null } });
  });

  it('keeps every digit of a JSON number value (no float rounding)', () => {
    const r = parseEventLine(`{"id":"e","tenant":"t","customer":"c","meter":"m","timestamp":${NOW},"value":12345678901234567890.123456789}`, opts);
    expect(r.ok && r.event.value).toBe('12345678901234567890.123456789');
  });

  it('accepts ISO-8601 timestamps', () => {
    const r = parseEventLine(line({ ...good, timestamp: '2026-11-22T11:00:00.250Z' }), opts);
    expect(r.ok && r.event.timestamp).toBe(Date.UTC(2026, 10, 22, 11, 0, 0, 250));
  });

  it.each([
    ['invalid JSON', '{"id": "e1", ', /invalid JSON/],
    ['a JSON array', '[1,2]', /not a JSON object/],
    ['missing id', line({ ...good, id: undefined }), /missing id/],
    ['empty id', line({ ...good, id: '' }), /missing id/],
    ['a 129-character id', line({ ...good, id: 'x'.repeat(129) }), /id is longer than 128/],
    ['control characters in the id', line({ ...good, id: 'a\u0000b' }), /control characters/],
    ['NaN as a string', line({ ...good, value: 'NaN' }), /not a decimal/],
    ['Infinity', line({ ...good, value: 'Infinity' }), /not a decimal/],
    ['a bare NaN token', `{"id":"e","tenant":"t","customer":"c","meter":"m","timestamp":${NOW},"value":NaN}`, /invalid JSON/],
    ['ten decimal places', line({ ...good, value: '0.0000000001' }), /more than 9 decimal places/],
    ['a 40-digit value', line({ ...good, value: '1'.repeat(40) }), /exceeds 29 integer digits/],
    ['unknown meter characters', line({ ...good, meter: 'api calls; DROP TABLE' }), /meter name must be/],
    ['an unknown field', line({ ...good, colour: 'red' }), /unknown field "colour"/],
    ['a timestamp in seconds (before 2000)', line({ ...good, timestamp: Math.floor(NOW / 1000) }), /before 2000/],
    ['a timestamp an hour ahead', line({ ...good, timestamp: NOW + 3_600_000 }), /too far in the future/],
    ['a numeric property', line({ ...good, properties: { n: 5 } }), /property "n" must be a string/],
    ['a missing value', line({ ...good, value: undefined }), /missing value/],
  ])('rejects %s with a reason', (_name, l, expected) => {
    expect(reason(l)).toMatch(expected);
  });

  it('rejects a 10 MB line without parsing it', () => {
    const huge = line({ ...good, id: 'x'.repeat(10 * 1024 * 1024) });
    expect(huge.length).toBeGreaterThan(MAX_LINE_BYTES);
    expect(reason(huge)).toMatch(/longer than 1048576 bytes/);
  });

  it('fills a missing tenant from --tenant and rejects a mismatching one', () => {
    const { tenant: _t, ...noTenant } = good;
    const r = parseEventLine(line(noTenant), { ...opts, tenant: 'acme' });
    expect(r.ok && r.event.tenant).toBe('acme');
    expect(reason(line(good), { tenant: 'acme' })).toMatch(/does not match --tenant/);
  });
});
