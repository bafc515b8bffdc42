import { encodeRows, REJECTED_EVENTS, USAGE_EVENTS } from '../../src/adapters/clickhouse/ledger-rows';
import { tsvDateTime64, tsvDateTime64Micro, tsvNullableString, tsvString, tsvStringMap } from '../../src/adapters/clickhouse/tsv';
import { candidateOf, type Candidate } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';

/** ClickHouse's TSV reading of a plain field: the inverse the encoder must satisfy. */
function readTsvField(field: string): string {
  const map: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r', '0': '\0', b: '\b', f: '\f', "'": "'" };
  return field.replace(/\\(.)/g, (_, c: string) => map[c] ?? c);
}

const HOSTILE = [
  '',
  'plain',
  'tab\there',
  'new\nline',
  'carriage\rreturn',
  'back\\slash',
  'trailing backslash\\',
  '\\N',
  '\\t is not a tab',
  "it's 'quoted'",
  '"double" quotes',
  'nul\u0000byte',
  'bell\b and feed\f',
  'ünïcødé — 日本語 🚀',
  "'; DROP TABLE t; --",
  '{not: a map}',
];

describe('TSV fields: whatever a value holds, one field on one line that reads back exactly', () => {
  it.each(HOSTILE)('a String field never holds a raw tab or newline and reads back exactly: %j', (s) => {
    const field = tsvString(s);
    expect(field).not.toMatch(/[\t\n\r\0]/);
    expect(readTsvField(field)).toBe(s);
  });

  it('escapes each special character the way ClickHouse reads it', () => {
    expect(tsvString('a\tb\nc\\d\re\0f\bg\fh')).toBe('a\\tb\\nc\\\\d\\re\\0f\\bg\\fh');
    expect(tsvString("it's")).toBe("it's");
  });

  it('writes NULL as \\N and a literal "\\N" text as \\\\N, so the two never mix', () => {
    expect(tsvNullableString(null)).toBe('\\N');
    expect(tsvNullableString('\\N')).toBe('\\\\N');
    expect(tsvNullableString('')).toBe('');
  });

  it('writes a Map as quoted keys and values with quotes and backslashes escaped once', () => {
    expect(tsvStringMap({})).toBe('{}');
    expect(tsvStringMap({ a: 'b' })).toBe("{'a':'b'}");
    expect(tsvStringMap({ "k'ey": 'v\\al', 't\tab': 'n\nl' })).toBe("{'k\\'ey':'v\\\\al','t\\tab':'n\\nl'}");
  });

  it('writes a huge map on one line', () => {
    const big = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`key${i}\t'`, `${'x\n\\'.repeat(300)}${i}`]));
    const field = tsvStringMap(big);
    expect(field).not.toMatch(/[\t\n]/);
    expect(field.length).toBeGreaterThan(64 * 1200);
  });

  it.each([
    0,
    1,
    999,
    Date.UTC(2026, 10, 29, 7, 45, 12, 3),
    Date.UTC(2026, 11, 31, 23, 59, 59, 999),
    Date.UTC(2028, 1, 29, 12, 0, 0, 0),
    Date.UTC(9999, 11, 31, 23, 59, 59, 999),
  ])('writes DateTime64(3) text equal to the ISO instant, to the millisecond: %d', (ms) => {
    expect(tsvDateTime64(ms)).toBe(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''));
  });

  it('writes the same text when days alternate (the cached date part never leaks into another day)', () => {
    const a = Date.UTC(2026, 0, 1, 23, 59, 59, 999);
    const b = a + 1;
    for (const ms of [a, b, a, b - 86_400_000, b]) expect(tsvDateTime64(ms)).toBe(new Date(ms).toISOString().replace('T', ' ').replace('Z', ''));
  });

  it('writes DateTime64(6) as the millisecond instant with three zero microsecond digits', () => {
    expect(tsvDateTime64Micro(Date.UTC(2026, 10, 29, 1, 2, 3, 45))).toBe('2026-11-29 01:02:03.045000');
    // It repeats its last answer for the same instant, and only for it.
    const a = Date.UTC(2026, 10, 29, 1, 2, 3, 45);
    for (const ms of [a, a, a + 1, a, a + 86_400_000, a + 86_400_000]) {
      expect(tsvDateTime64Micro(ms)).toBe(`${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}000`);
    }
    expect(() => tsvDateTime64Micro(Number.NaN)).toThrow(RangeError);
  });

  it('refuses a time the text cannot hold instead of writing a wrong one', () => {
    expect(() => tsvDateTime64(-1)).toThrow(RangeError);
    expect(() => tsvDateTime64(1.5)).toThrow(RangeError);
    expect(() => tsvDateTime64(Date.UTC(10000, 0, 1))).toThrow(RangeError);
  });
});

describe('table encoders: one row per line, one field per column', () => {
  const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'count' }] });
  if (!parsed.ok) throw new Error('bad test catalog');
  const meter = parsed.catalog.get('api_calls')!;

  it('encodes a usage event with hostile text into exactly one line of as many fields as columns', () => {
    const event: UsageEvent = {
      id: 'id\\with\\backslashes',
      tenant: "t'1",
      customer: 'cust 🚀',
      meter: 'api_calls',
      value: '99999999999999999999.999999999',
      timestamp: Date.UTC(2026, 10, 29, 7, 0, 0, 1),
      properties: { 'a\tb': 'c\nd', e: '' },
      source: '\\N',
    };
    const c: Candidate = candidateOf({ topic: 'usage.events', partition: 3, offset: '9007199254740993' }, event, meter);
    const text = encodeRows(USAGE_EVENTS, [{ event: { candidate: c, lateness: decideLateness(event.timestamp, meter, null) }, ingestedAt: event.timestamp, ingestedBy: 'host/1/ab' }]).toString('utf8');
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(1);
    const fields = lines[0]!.split('\t');
    expect(fields).toHaveLength(USAGE_EVENTS.columns.length);
    const at = (column: string) => fields[USAGE_EVENTS.columns.indexOf(column)];
    expect(readTsvField(at('id')!)).toBe(event.id);
    expect(at('value')).toBe('99999999999999999999.999999999');
    expect(at('offset')).toBe('9007199254740993');
    expect(at('source')).toBe('\\\\N');
    expect(at('event_time')).toBe('2026-11-29 07:00:00.001');
  });

  it('encodes a dead letter with an absent key, tenant and id as NULLs and its bytes as base64', () => {
    const raw = Buffer.from([0, 9, 10, 92, 255]);
    const text = encodeRows(REJECTED_EVENTS, [
      { reasonCode: 'malformed_avro', reason: 'bad\tbytes\n', raw, key: null, tenant: null, eventId: null, ref: { topic: 't', partition: 0, offset: '5' }, status: 'rejected', at: 0, version: 0 },
    ]).toString('utf8');
    const fields = text.slice(0, -1).split('\t');
    expect(fields).toEqual(['malformed_avro', 'bad\\tbytes\\n', raw.toString('base64'), '\\N', '\\N', '\\N', 't', '0', '5', '1970-01-01 00:00:00.000000', 'rejected', '0']);
  });

  it('encodes no rows as no bytes', () => {
    expect(encodeRows(USAGE_EVENTS, []).length).toBe(0);
  });
});
