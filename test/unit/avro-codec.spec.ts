import * as avro from 'avsc';
import { formatDecimal, unitsFromBytes, unitsToBytes } from '../../src/domain/decimal';
import { validateEvent, type UsageEvent } from '../../src/domain/usage-event';
import { createDecoder, createSingleObjectEncoder, type Decoded } from '../../src/adapters/avro/codec';
import { decimalFromBytes } from '../../src/adapters/avro/decimal-type';
import { canonicalForm, crc64Avro, schemaFingerprint } from '../../src/adapters/avro/fingerprint';
import { parseSchema, usageEventSchemas } from '../../src/adapters/avro/schemas';

const { versions, latest } = usageEventSchemas();
const v1 = versions.find((v) => v.version === 1)!;

const event: UsageEvent = {
  id: 'evt-0001',
  tenant: 'acme',
  customer: 'cus_123',
  meter: 'api.requests',
  value: '12.345678901',
  timestamp: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
  properties: { region: 'eu-west-1', plan: 'pro' },
  source: 'gateway',
};

function singleObject(version: typeof v1, record: unknown): Buffer {
  return Buffer.concat([Buffer.from([0xc3, 0x01]), version.fingerprintLE, version.type.toBuffer(record)]);
}

async function decodeOne(buf: Buffer | null): Promise<Decoded> {
  const [result] = await createDecoder().decodeMany([buf]);
  return result!;
}

async function failure(buf: Buffer | null): Promise<{ code: string; reason: string }> {
  const result = await decodeOne(buf);
  if (result.ok) throw new Error('expected a decode failure');
  return result;
}

describe('CRC-64-AVRO fingerprint of the Parsing Canonical Form', () => {
  // From apache/avro share/test/data/schema-tests.txt (input, canonical form, fingerprint as a Java long).
  const vectors: [unknown, string, bigint][] = [
    ['null', '"null"', 7195948357588979594n],
    [{ type: 'boolean' }, '"boolean"', -6970731678124411036n],
    ['int', '"int"', 8247732601305521295n],
    [{ type: 'long' }, '"long"', -3434872931120570953n],
    ['string', '"string"', -8142146995180207161n],
    [['int', { type: 'boolean' }], '["int","boolean"]', 5392556393470105090n],
    [{ fields: [], type: 'record', name: 'foo', namespace: 'x.y' }, '{"name":"x.y.foo","type":"record","fields":[]}', 5916914534497305771n],
    [{ fields: [], type: 'record', name: 'a.b.foo', namespace: 'x.y' }, '{"name":"a.b.foo","type":"record","fields":[]}', -4616218487480524110n],
    [{ fields: [], type: 'record', name: 'foo', doc: 'foo', aliases: ['foo', 'bar'] }, '{"name":"foo","type":"record","fields":[]}', -4824392279771201922n],
    [
      { fields: [{ type: 'boolean', aliases: [], name: 'f1' }, { order: 'descending', name: 'f2', doc: 'Hello', type: 'int' }], type: 'record', name: 'foo' },
      '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}',
      -4860222112080293046n,
    ],
    [{ namespace: 'x.y.z', type: 'enum', name: 'foo', doc: 'foo bar', symbols: ['A1', 'A2'] }, '{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}', -4448647247586288245n],
    [{ namespace: 'x.y.z', type: 'fixed', name: 'foo', doc: 'foo bar', size: 32 }, '{"name":"x.y.z.foo","type":"fixed","size":32}', -3064184465700546786n],
    [{ items: { type: 'null' }, type: 'array' }, '{"type":"array","items":"null"}', -589620603366471059n],
    [{ values: 'string', type: 'map' }, '{"type":"map","values":"string"}', -8732877298790414990n],
    [
      { name: 'PigValue', type: 'record', fields: [{ name: 'value', type: ['null', 'int', 'long', 'PigValue'] }] },
      '{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}',
      -1759257747318642341n,
    ],
  ];

  it.each(vectors)('%j', (input, canonical, javaLong) => {
    const type = avro.Type.forSchema(input as avro.Schema);
    expect(canonicalForm(type)).toBe(canonical);
    expect(BigInt.asIntN(64, crc64Avro(Buffer.from(canonical)))).toBe(javaLong);
    expect(BigInt.asIntN(64, schemaFingerprint(type))).toBe(javaLong);
  });

  it('fingerprints "int" as 0x7275d51a3f395c8f', () => {
    expect(crc64Avro(Buffer.from('"int"'))).toBe(0x7275d51a3f395c8fn);
  });

  it('drops logical types, docs and defaults from the usage event canonical form', () => {
    expect(latest.canonical).toBe(
      '{"name":"dev.meterline.UsageEvent","type":"record","fields":[{"name":"id","type":"string"},{"name":"tenant","type":"string"},' +
        '{"name":"customer","type":"string"},{"name":"meter","type":"string"},{"name":"value","type":"bytes"},' +
        '{"name":"timestamp","type":"long"},{"name":"properties","type":{"type":"map","values":"string"}},' +
        '{"name":"source","type":["null","string"]}]}',
    );
    expect(new Set(versions.map((v) => v.fingerprint)).size).toBe(versions.length);
  });
});

describe('schema catalog', () => {
  it('orders versions and reads from the latest', () => {
    expect(versions.map((v) => v.version)).toEqual([1, 2]);
    expect(latest.version).toBe(2);
  });

  it('rejects decimals other than (38, 9) instead of reading them as bytes', () => {
    expect(() => parseSchema({ type: 'bytes', logicalType: 'decimal', precision: 10, scale: 2 })).toThrow(/decimal\(10, 2\)/);
  });

  it('reads decimal bytes the same as decimal.ts, fast path included', () => {
    const values = [0n, 1n, -1n, 999_999_999n, 1_000_000_000n, -1_000_000_001n, 2n ** 47n - 1n, -(2n ** 47n), 2n ** 47n, 10n ** 38n - 1n, -(10n ** 38n - 1n)];
    for (let k = 0n; k < 64n; k += 3n) values.push(123_456_789n * (k + 1n) ** 5n, -(7n ** (k / 2n)));
    for (const v of values) expect(decimalFromBytes(unitsToBytes(v))).toBe(formatDecimal(unitsFromBytes(unitsToBytes(v))));
    expect(decimalFromBytes(Buffer.alloc(0))).toBe('0');
    expect(() => decimalFromBytes(unitsToBytes(10n ** 38n))).toThrow(/precision 38/);
  });
});

describe('single-object encoding', () => {
  it('frames C3 01 + little-endian fingerprint + Avro body', async () => {
    const buf = await createSingleObjectEncoder().encode(event);
    expect(buf.subarray(0, 2)).toEqual(Buffer.from([0xc3, 0x01]));
    expect(buf.readBigUInt64LE(2)).toBe(latest.fingerprint);
  });

  it('round-trips v2 data through the latest reader into a valid event', async () => {
    const result = await decodeOne(await createSingleObjectEncoder().encode(event));
    expect(result).toMatchObject({ ok: true, encoding: 'single-object', writerSchemaVersion: 2 });
    if (!result.ok) return;
    expect(result.schemaId).toBeUndefined();
    expect({ ...result.record }).toEqual({ ...event });
    expect(validateEvent(result.record, { now: event.timestamp, maxFutureSkewMs: 0 })).toEqual({ ok: true, event });
  });

  it('reads v1 data as the latest schema with source null', async () => {
    const { source: _source, ...v1Record } = event;
    const result = await decodeOne(singleObject(v1, v1Record));
    expect(result).toMatchObject({ ok: true, writerSchemaVersion: 1 });
    if (result.ok) expect({ ...result.record }).toEqual({ ...event, source: null });
  });

  it('keeps value as canonical decimal text and timestamp as a number, at the extremes', async () => {
    const encoder = createSingleObjectEncoder();
    const max = '99999999999999999999999999999.999999999';
    const events = ['0', '0.000000001', '-0.000000001', max, `-${max}`].map((value) => ({ ...event, value, properties: {}, source: null }));
    const results = await createDecoder().decodeMany(await Promise.all(events.map((e) => encoder.encode(e))));
    expect(results.map((r) => r.ok && r.record.value)).toEqual(events.map((e) => e.value));
    expect(results.map((r) => r.ok && typeof r.record.timestamp)).toEqual(events.map(() => 'number'));
  });

  it('refuses to encode an event that does not fit the schema', async () => {
    await expect(createSingleObjectEncoder().encode({ ...event, value: '0.0000000001' })).rejects.toThrow(/does not fit schema v2/);
  });
});

describe('decoding bad input never throws', () => {
  const body = latest.type.toBuffer({ ...event });
  const header = Buffer.concat([Buffer.from([0xc3, 0x01]), latest.fingerprintLE]);
  const good = Buffer.concat([header, body]);

  it.each([
    ['null (tombstone)', null, 'empty'],
    ['empty buffer', Buffer.alloc(0), 'empty'],
    ['JSON text', Buffer.from(JSON.stringify(event)), 'bad_magic'],
    ['C3 without 01', Buffer.from([0xc3, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 'bad_magic'],
    ['truncated single-object header', good.subarray(0, 6), 'malformed_avro'],
    ['unknown fingerprint', Buffer.concat([Buffer.from([0xc3, 0x01]), Buffer.alloc(8, 0xab), body]), 'unknown_schema'],
    ['truncated body', good.subarray(0, good.length - 3), 'malformed_avro'],
    ['header only', header, 'malformed_avro'],
    ['trailing garbage', Buffer.concat([good, Buffer.from([0, 1])]), 'malformed_avro'],
    ['Confluent frame, no registry', Buffer.concat([Buffer.from([0, 0, 0, 0, 7]), body]), 'unknown_schema'],
    ['truncated Confluent header', Buffer.from([0, 0, 1]), 'malformed_avro'],
  ])('%s -> %s', async (_name, buf, code) => {
    const result = await failure(buf);
    expect(result.code).toBe(code);
    expect(result.reason.length).toBeGreaterThan(10);
  });

  /** Header plus a v2 body up to and including `timestamp` (the last two bytes were properties and source). */
  const prefix = Buffer.concat([header, latest.type.toBuffer({ ...event, properties: {}, source: null }).subarray(0, -2)]);

  it('rejects an absurd map block count quickly', async () => {
    const absurd = Buffer.concat([prefix, Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from('abc')]);
    const started = Date.now();
    const result = await failure(absurd);
    expect(Date.now() - started).toBeLessThan(100);
    expect(result).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/^properties: block of \d+ items cannot fit/) });
  });

  it('rejects an absurd string length', async () => {
    const absurd = Buffer.concat([header, Buffer.from([0xfe, 0xff, 0xff, 0xff, 0x0f]), Buffer.from('evt')]);
    expect(await failure(absurd)).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/^id: length \d+ runs past the end/) });
  });

  it('rejects a negative length and an overlong varint', async () => {
    expect((await failure(Buffer.concat([header, Buffer.from([0x03])]))).reason).toMatch(/^id: negative length -2/);
    expect((await failure(Buffer.concat([header, Buffer.alloc(11, 0xff)]))).reason).toMatch(/^id: varint longer than 10 bytes/);
  });

  it('rejects invalid UTF-8 instead of replacing it', async () => {
    const bad = Buffer.concat([header, Buffer.from([0x04, 0xc3, 0x28]), body.subarray(1 + event.id.length)]);
    expect(await failure(bad)).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/^id: string is not valid UTF-8/) });
  });

  it('rejects a union branch that does not exist', async () => {
    const bad = Buffer.concat([prefix, Buffer.from([0x00, 0x04, 0x02, 0x61])]);
    expect(await failure(bad)).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/^source: union branch 2 does not exist/) });
  });

  it('rejects a timestamp beyond 2^53', async () => {
    const hugeTs = Buffer.concat([
      prefix.subarray(0, -6), // the timestamp is a 6-byte varint
      Buffer.from([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
      Buffer.from([0x00, 0x00]),
    ]);
    expect(await failure(hugeTs)).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/^timestamp: integer exceeds 2\^53/) });
  });

  it('rejects a decimal wider than 38 digits', async () => {
    const one = latest.type.toBuffer({ ...event, value: '1' });
    const at = one.indexOf(Buffer.from([0x08, 0x3b, 0x9a, 0xca, 0x00])); // length 4, then 1e9 units
    const wide = Buffer.concat([header, one.subarray(0, at), Buffer.from([34]), Buffer.alloc(17, 0x7f), one.subarray(at + 5)]); // 34: length 17
    expect(await failure(wide)).toMatchObject({ code: 'malformed_avro', reason: expect.stringMatching(/precision 38/) });
  });

  it('decodes a mixed batch, one result per input, in order', async () => {
    const results = await createDecoder().decodeMany([good, null, Buffer.from('x'), good.subarray(0, 12), good]);
    expect(results.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'empty', 'bad_magic', 'malformed_avro', 'ok']);
  });

  it('decodeEach hands over the same results as decodeMany, one per input, in order', async () => {
    const inputs = [good, null, Buffer.from('x'), good.subarray(0, 12), good];
    const visited: [number, unknown][] = [];
    await createDecoder().decodeEach(inputs, (d, i) => visited.push([i, d]));
    expect(visited).toEqual((await createDecoder().decodeMany(inputs)).map((d, i) => [i, d]));
  });
});
