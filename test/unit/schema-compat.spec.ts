import { checkCompatibility, runSchemasCheck } from '../../src/adapters/avro/compatibility';
import { defaultSchemaDir, readSchemaFiles } from '../../src/adapters/avro/schemas';

const files = readSchemaFiles();
const shipped = files.map((f) => ({ version: f.version, schema: f.raw }));
const v2 = files.find((f) => f.version === 2)!.raw as { fields: { name: string; type: unknown; default?: unknown }[] };

/** v3 = v2 with its fields passed through `edit`. */
function v3(edit: (fields: typeof v2.fields) => typeof v2.fields) {
  return [...shipped, { version: 3, schema: { ...v2, fields: edit(structuredClone(v2.fields)) } }];
}

describe('schema compatibility', () => {
  it('passes for the shipped schemas', () => {
    expect(checkCompatibility(shipped)).toEqual([]);
    const result = runSchemasCheck(defaultSchemaDir());
    expect(result.ok).toBe(true);
    expect(result.lines).toEqual([
      expect.stringMatching(
        /^v1 usage-event\.v1\.avsc fingerprint 0x[0-9a-f]{16} \(CRC-64-AVRO\); also accepted: 0x[0-9a-f]{16} as python-avro computes it, 0x[0-9a-f]{16} as rust-apache-avro computes it$/,
      ),
      expect.stringMatching(/^v2 usage-event\.v2\.avsc fingerprint 0x[0-9a-f]{16}/),
      'ok   v1 data read as v2',
      '2 schema versions, all compatible',
    ]);
  });

  it('catches a field added without a default, naming the field and both versions', () => {
    const problems = checkCompatibility(v3((fields) => [...fields, { name: 'region', type: 'string' }]));
    expect(problems).toEqual([
      { readerVersion: 3, writerVersion: 1, field: 'region', message: expect.stringContaining('field "region" is added without a default') },
      { readerVersion: 3, writerVersion: 2, field: 'region', message: expect.stringContaining('field "region" is added without a default') },
    ]);
    expect(problems[0]!.message).toMatch(/^v1 data read as v3: /);
  });

  it('accepts a field added with a default, and a removed field', () => {
    expect(checkCompatibility(v3((fields) => [...fields, { name: 'region', type: 'string', default: 'unknown' }]))).toEqual([]);
    expect(checkCompatibility(v3((fields) => fields.filter((f) => f.name !== 'properties')))).toEqual([]);
  });

  it('catches a type change Avro cannot promote', () => {
    const problems = checkCompatibility(v3((fields) => fields.map((f) => (f.name === 'timestamp' ? { ...f, type: 'int' } : f))));
    expect(problems.map((p) => [p.writerVersion, p.field])).toEqual([
      [1, 'timestamp'],
      [2, 'timestamp'],
    ]);
    expect(problems[0]!.message).toMatch(/field "timestamp" changes type from "long" to "int"/);
  });

  it('catches value losing its decimal logical type, though bytes still resolve', () => {
    const problems = checkCompatibility(v3((fields) => fields.map((f) => (f.name === 'value' ? { ...f, type: 'bytes' } : f))));
    expect(problems.map((p) => p.field)).toEqual(['value', 'value']);
    expect(problems[0]!.message).toMatch(/field "value" changes logical type from decimal\(38,9\) to none/);
  });

  it('catches value becoming a string', () => {
    const problems = checkCompatibility(v3((fields) => fields.map((f) => (f.name === 'value' ? { ...f, type: 'string' } : f))));
    expect(problems.map((p) => p.field)).toEqual(['value', 'value']);
  });

  it('rejects a decimal of another precision or scale outright', () => {
    const decimal = { type: 'bytes', logicalType: 'decimal', precision: 18, scale: 2 };
    const problems = checkCompatibility(v3((fields) => fields.map((f) => (f.name === 'value' ? { ...f, type: decimal } : f))));
    expect(problems).toEqual([{ readerVersion: 3, writerVersion: null, field: null, message: expect.stringMatching(/^v3: invalid schema: unsupported decimal\(18, 2\)/) }]);
  });

  it('checks transitively: a required source breaks v1 data only', () => {
    const problems = checkCompatibility(v3((fields) => fields.map((f) => (f.name === 'source' ? { name: 'source', type: 'string' } : f))));
    expect(problems.map((p) => [p.writerVersion, p.field])).toContainEqual([1, 'source']);
    expect(problems.find((p) => p.writerVersion === 1)!.message).toMatch(/field "source" is added without a default/);
  });

  it('reports duplicate versions', () => {
    expect(checkCompatibility([...shipped, shipped[1]!])).toEqual([expect.objectContaining({ readerVersion: 2, writerVersion: null })]);
  });
});

describe('the validator and the latest schema agree', () => {
  it('accepts exactly the fields the latest Avro schema defines', () => {
    const { usageEventSchemas } = require('../../src/adapters/avro/schemas') as typeof import('../../src/adapters/avro/schemas');
    const { EVENT_FIELDS } = require('../../src/domain/usage-event') as typeof import('../../src/domain/usage-event');
    const latest = usageEventSchemas().latest.type as unknown as { fields: { name: string }[] };
    expect([...EVENT_FIELDS].sort()).toEqual(latest.fields.map((f) => f.name).sort());
  });
});
