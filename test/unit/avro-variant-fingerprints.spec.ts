import * as avro from 'avsc';
import { canonicalFormIn, fingerprintIn } from '../../src/adapters/avro/canonical-variants';
import { createDecoder, type Decoded } from '../../src/adapters/avro/codec';
import { canonicalForm, fingerprintBytes, formatFingerprint } from '../../src/adapters/avro/fingerprint';
import { usageEventSchemas } from '../../src/adapters/avro/schemas';
import { validateEvent } from '../../src/domain/usage-event';

const { versions, latest } = usageEventSchemas();
const v2 = versions.find((v) => v.version === 2)!;

const event = {
  id: 'py-0001',
  tenant: 'acme',
  customer: 'cus_123',
  meter: 'api.requests',
  value: '12.5',
  timestamp: Date.UTC(2025, 0, 2, 3, 4, 5, 678),
  properties: { region: 'eu-west-1' },
  source: 'billing-py',
};

/** A single-object message as another library frames it: its own fingerprint, the same body. */
function singleObjectWith(fingerprint: bigint, type: avro.Type, record: unknown): Buffer {
  return Buffer.concat([Buffer.from([0xc3, 0x01]), fingerprintBytes(fingerprint), type.toBuffer(record)]);
}

async function decodeOne(buf: Buffer): Promise<Decoded> {
  const [result] = await createDecoder().decodeMany([buf]);
  return result!;
}

describe('Parsing Canonical Form as other Avro libraries compute it', () => {
  it('in the spec style equals avsc canonical form for every shipped schema', () => {
    for (const v of versions) expect(canonicalFormIn('spec', v.raw)).toBe(canonicalForm(v.type));
  });

  it('reproduces python3-avro 1.11 for v2: {"type":"bytes"} kept, fingerprint 0x1b3e15b4bc0b340f', () => {
    // Printed by Debian python3-avro 1.11.1: avro.schema.parse(open('usage-event.v2.avsc').read()).canonical_form
    expect(canonicalFormIn('python-avro', v2.raw)).toBe(
      '{"name":"dev.meterline.UsageEvent","type":"record","fields":[{"name":"id","type":"string"},{"name":"tenant","type":"string"},' +
        '{"name":"customer","type":"string"},{"name":"meter","type":"string"},{"name":"value","type":{"type":"bytes"}},' +
        '{"name":"timestamp","type":{"type":"long"}},{"name":"properties","type":{"type":"map","values":"string"}},' +
        '{"name":"source","type":["null","string"]}]}',
    );
    expect(formatFingerprint(fingerprintIn('python-avro', v2.raw))).toBe('0x1b3e15b4bc0b340f');
    expect(formatFingerprint(v2.fingerprint)).toBe('0xd99754faf5dd16f4');
  });

  it('reproduces Rust apache-avro before AVRO-4004: logicalType, precision and scale kept', () => {
    const form = canonicalFormIn('rust-apache-avro', v2.raw);
    expect(form).toContain('{"name":"value","type":{"type":"bytes","logicalType":"decimal","precision":38,"scale":9}}');
    expect(form).toContain('{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-millis"}}');
  });

  it('lists both variants as aliases of every version, distinct from every spec fingerprint', () => {
    const spec = new Set(versions.map((v) => v.fingerprint));
    for (const v of versions) {
      expect(v.aliases.map((a) => a.style)).toEqual(['python-avro', 'rust-apache-avro']);
      for (const a of v.aliases) expect(spec.has(a.fingerprint)).toBe(false);
    }
  });
});

describe('decoding messages fingerprinted by other libraries', () => {
  it.each(['python-avro', 'rust-apache-avro'] as const)('reads a %s-fingerprinted v2 message as schema v2', async (style) => {
    const buf = singleObjectWith(fingerprintIn(style, v2.raw), v2.type, event);
    const result = await decodeOne(buf);
    expect(result).toMatchObject({ ok: true, encoding: 'single-object', writerSchemaVersion: 2 });
    if (!result.ok) return;
    expect(validateEvent(result.record, { now: Date.UTC(2026, 0, 1), maxFutureSkewMs: 0 })).toEqual({ ok: true, event });
  });

  it('reads a python-avro-fingerprinted v1 message as schema v1 (source null)', async () => {
    const v1 = versions.find((v) => v.version === 1)!;
    const { source: _source, ...v1Event } = event;
    const result = await decodeOne(singleObjectWith(fingerprintIn('python-avro', v1.raw), v1.type, v1Event));
    expect(result).toMatchObject({ ok: true, writerSchemaVersion: 1, record: { ...v1Event, source: null } });
  });

  it('dead-letters an unknown fingerprint with a reason naming every known fingerprint', async () => {
    const result = await decodeOne(singleObjectWith(0x0123456789abcdefn, latest.type, event));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe('unknown_schema');
    expect(result.reason).toContain('0x0123456789abcdef');
    for (const v of versions) {
      expect(result.reason).toContain(`v${v.version} ${formatFingerprint(v.fingerprint)}`);
      for (const a of v.aliases) expect(result.reason).toContain(`${formatFingerprint(a.fingerprint)} ${a.style}`);
    }
    expect(result.reason).toContain('0x1b3e15b4bc0b340f python-avro');
  });
});
