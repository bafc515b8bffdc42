import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { UsageEvent } from '../../src/domain/usage-event';
import { MeterlineError } from '../../src/runtime/errors';
import { createConfluentEncoder, createDecoder, createSingleObjectEncoder, DEFAULT_SUBJECT } from '../../src/adapters/avro/codec';
import { avroTypeOptions, usageEventSchemas } from '../../src/adapters/avro/schemas';
import { start, type FakeSchemaRegistry } from '../fakes/schema-registry';

const event: UsageEvent = {
  id: 'evt-42',
  tenant: 'acme',
  customer: 'cus_9',
  meter: 'storage.gb_hours',
  value: '1234.5',
  timestamp: Date.UTC(2025, 5, 1),
  properties: { region: 'us-east-1' },
  source: 'billing-agent',
};

/** No client-side retries: an outage must surface at once, not after ~1 s of backoff. */
function clientFor(fake: FakeSchemaRegistry): SchemaRegistry {
  return new SchemaRegistry({ host: fake.url, retry: { retries: 0 } });
}

function schemaIdOf(buf: Buffer): number {
  return buf.readInt32BE(1);
}

describe('Confluent wire format through a (fake) schema registry', () => {
  let fake: FakeSchemaRegistry;
  let registry: SchemaRegistry;

  beforeEach(async () => {
    fake = await start();
    registry = clientFor(fake);
  });
  afterEach(async () => {
    fake.setUnavailable(false);
    await fake.close();
  });

  it('registers the latest schema once and round-trips through the decoder', async () => {
    const encoder = createConfluentEncoder(registry);
    const [a, b] = await Promise.all([encoder.encode(event), encoder.encode({ ...event, id: 'evt-43' })]);
    expect(fake.requests.filter((r) => r.method === 'POST')).toEqual([{ method: 'POST', path: `/subjects/${DEFAULT_SUBJECT}/versions` }]);
    expect(a![0]).toBe(0);
    expect(schemaIdOf(a!)).toBe(schemaIdOf(b!));

    const [decoded] = await createDecoder({ registry: clientFor(fake) }).decodeMany([a!]);
    expect(decoded).toMatchObject({ ok: true, encoding: 'confluent', schemaId: schemaIdOf(a!), writerSchemaVersion: 2 });
    if (decoded?.ok) expect({ ...decoded.record }).toEqual({ ...event });
  });

  it('decodes both encodings in one batch, fetching each registry id once', async () => {
    const confluent = createConfluentEncoder(registry);
    const single = createSingleObjectEncoder();
    const batch = [
      await confluent.encode(event),
      await single.encode({ ...event, id: 'evt-s1' }),
      await confluent.encode({ ...event, id: 'evt-c2' }),
      await single.encode({ ...event, id: 'evt-s2' }),
    ];
    const decoder = createDecoder({ registry: clientFor(fake) });
    const results = await decoder.decodeMany(batch);
    expect(results.map((r) => r.ok && [r.encoding, r.record.id])).toEqual([
      ['confluent', 'evt-42'],
      ['single-object', 'evt-s1'],
      ['confluent', 'evt-c2'],
      ['single-object', 'evt-s2'],
    ]);
    const lookups = () => fake.requests.filter((r) => r.path.startsWith('/schemas/ids/')).length;
    expect(lookups()).toBe(1);
    await decoder.decodeMany(batch);
    expect(lookups()).toBe(1);
  });

  it('reads data a producer wrote with v1, registered in the registry', async () => {
    const v1 = usageEventSchemas().versions[0]!;
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(v1.raw) }, { subject: 'legacy-value' });
    const { source: _source, ...v1Record } = event;
    const buf = Buffer.concat([Buffer.from([0, 0, 0, 0, id]), v1.type.toBuffer(v1Record)]);
    const [decoded] = await createDecoder({ registry }).decodeMany([buf]);
    expect(decoded).toMatchObject({ ok: true, writerSchemaVersion: 1, schemaId: id, record: { source: null, value: '1234.5' } });
  });

  it('reads a registry schema unknown locally by resolution (version null)', async () => {
    const v2 = usageEventSchemas().latest.raw as { fields: unknown[] };
    const extra = { ...v2, fields: [...v2.fields, { name: 'zone', type: 'string', default: 'z1' }] };
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(extra) }, { subject: 'other-value' });
    const writer = await registry.getSchema(id);
    const buf = Buffer.concat([Buffer.from([0, 0, 0, 0, id]), writer.toBuffer({ ...event, value: Buffer.from([0x01]), zone: 'z9' })]);
    const [decoded] = await createDecoder({ registry }).decodeMany([buf]);
    expect(decoded).toMatchObject({ ok: true, writerSchemaVersion: null, record: { value: '0.000000001' } });
    if (decoded?.ok) expect(Object.keys(decoded.record)).not.toContain('zone');
  });

  it('answers unknown_schema for an id the registry does not know, asking once per batch', async () => {
    const buf = Buffer.concat([Buffer.from([0, 0, 0, 3, 0xe7]), Buffer.from('x')]);
    const decoder = createDecoder({ registry });
    const results = await decoder.decodeMany([buf, buf, buf]);
    expect(results).toEqual(Array(3).fill({ ok: false, code: 'unknown_schema', reason: 'schema id 999 is not in the schema registry' }));
    expect(fake.requests.filter((r) => r.path === '/schemas/ids/999')).toHaveLength(1);
  });

  it('with avroTypeOptions() in the client, refuses a registry decimal of another scale', async () => {
    const latest = usageEventSchemas().latest.raw as { fields: { name: string }[] };
    const cents = { type: 'bytes', logicalType: 'decimal', precision: 18, scale: 2 };
    const scaled = { ...latest, fields: latest.fields.map((f) => (f.name === 'value' ? { ...f, type: cents } : f)) };
    const { id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(scaled) }, { subject: 'cents-value' });
    const body = (await createSingleObjectEncoder().encode(event)).subarray(10);
    const configured = new SchemaRegistry({ host: fake.url, retry: { retries: 0 } }, { forSchemaOptions: avroTypeOptions() });
    const [decoded] = await createDecoder({ registry: configured }).decodeMany([Buffer.concat([Buffer.from([0, 0, 0, 0, id]), body])]);
    expect(decoded).toEqual({ ok: false, code: 'unknown_schema', reason: expect.stringMatching(/unsupported decimal\(18, 2\)/) });
  });

  it('answers unknown_schema for a non-Avro registry schema', async () => {
    const { id } = await registry.register({ type: SchemaType.JSON, schema: '{"type":"object"}' }, { subject: 'json-value' });
    const [decoded] = await createDecoder({ registry }).decodeMany([Buffer.from([0, 0, 0, 0, id, 1])]);
    expect(decoded).toMatchObject({ ok: false, code: 'unknown_schema' });
  });

  it('throws a retriable MeterlineError when the registry answers 503', async () => {
    const buf = await createConfluentEncoder(registry).encode(event);
    fake.setUnavailable(true);
    const err = await createDecoder({ registry: clientFor(fake) }).decodeMany([buf]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterlineError);
    expect(err).toMatchObject({ code: 'registry_unavailable', retriable: true });
  });

  it('decodeEach throws the same error before handing anything over (the unit is retried whole)', async () => {
    const buf = await createConfluentEncoder(registry).encode(event);
    fake.setUnavailable(true);
    const visited: number[] = [];
    const err = await createDecoder({ registry: clientFor(fake) })
      .decodeEach([buf, buf], (_, i) => visited.push(i))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'registry_unavailable', retriable: true });
    expect(visited).toEqual([]);
  });

  it('throws a retriable MeterlineError when the registry is unreachable', async () => {
    const buf = await createConfluentEncoder(registry).encode(event);
    const gone = clientFor(fake);
    await fake.close();
    fake = await start(); // a fresh one for afterEach; `gone` points at the closed port
    const err = await createDecoder({ registry: gone }).decodeMany([buf]).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'registry_unavailable', retriable: true });
  });

  it('retries registration after an outage', async () => {
    const encoder = createConfluentEncoder(registry);
    fake.setUnavailable(true);
    await expect(encoder.encode(event)).rejects.toMatchObject({ code: 'registry_unavailable', retriable: true });
    fake.setUnavailable(false);
    await expect(encoder.encode(event)).resolves.toBeInstanceOf(Buffer);
  });

  it('fails registration into an incompatible subject with a non-retriable error', async () => {
    const latest = usageEventSchemas().latest.raw as { fields: { name: string }[] };
    const earlier = { ...latest, fields: latest.fields.map((f) => (f.name === 'timestamp' ? { ...f, type: 'string' } : f)) };
    await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(earlier) }, { subject: DEFAULT_SUBJECT });
    const err = await createConfluentEncoder(registry).encode(event).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterlineError);
    expect(err).toMatchObject({ code: 'schema_incompatible', retriable: false });
  });
});

describe('fake schema registry rules', () => {
  let fake: FakeSchemaRegistry;
  beforeAll(async () => {
    fake = await start();
  });
  afterAll(() => fake.close());

  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(fake.url + path, {
      method,
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Record<string, unknown> };
  }

  it('keeps one global id per schema across subjects, and versions per subject', async () => {
    const schema = JSON.stringify({ type: 'record', name: 'A', fields: [{ name: 'x', type: 'int' }] });
    const a = await call('POST', '/subjects/a/versions', { schema });
    const again = await call('POST', '/subjects/a/versions', { schema: schema.replace(/,/g, ', ') });
    const b = await call('POST', '/subjects/b/versions', { schema });
    expect(a).toMatchObject({ status: 200, type: 'application/vnd.schemaregistry.v1+json' });
    expect([again.body.id, b.body.id]).toEqual([a.body.id, a.body.id]);
    expect((await call('GET', '/subjects/a/versions/latest')).body).toMatchObject({ subject: 'a', version: 1, id: a.body.id, schema });
  });

  it('answers Confluent error codes', async () => {
    expect(await call('GET', '/schemas/ids/4242')).toMatchObject({ status: 404, body: { error_code: 40403 } });
    expect(await call('GET', '/subjects/nope/versions/latest')).toMatchObject({ status: 404, body: { error_code: 40401 } });
    expect(await call('GET', '/subjects/a/versions/9')).toMatchObject({ status: 404, body: { error_code: 40402 } });
    expect(await call('GET', '/config/a')).toMatchObject({ status: 404, body: { error_code: 40408 } });
    expect(await call('POST', '/subjects/a/versions', { schema: '{"type":"nope"}' })).toMatchObject({ status: 422, body: { error_code: 42201 } });
  });

  it('enforces BACKWARD on register and reports 409', async () => {
    const v1 = JSON.stringify({ type: 'record', name: 'C', fields: [{ name: 'x', type: 'int' }] });
    const bad = JSON.stringify({ type: 'record', name: 'C', fields: [{ name: 'x', type: 'int' }, { name: 'y', type: 'string' }] });
    const good = JSON.stringify({ type: 'record', name: 'C', fields: [{ name: 'x', type: 'long' }, { name: 'y', type: 'string', default: '' }] });
    await call('POST', '/subjects/c/versions', { schema: v1 });
    expect(await call('POST', '/subjects/c/versions', { schema: bad })).toMatchObject({ status: 409, body: { error_code: 409 } });
    expect(await call('POST', '/compatibility/subjects/c/versions/latest', { schema: bad })).toMatchObject({ body: { is_compatible: false } });
    expect(await call('POST', '/subjects/c/versions', { schema: good })).toMatchObject({ status: 200 });
    expect((await call('GET', '/subjects/c/versions')).body).toEqual([1, 2]);
  });
});
