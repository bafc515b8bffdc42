import { bodyHash, candidateOf, classifyMessage, decideDedupe, dedupeKey, type Candidate, type StoredKey } from '../../src/domain/ingest-decision';
import { parseMeterCatalog } from '../../src/domain/meters';
import type { UsageEvent } from '../../src/domain/usage-event';

const NOW = Date.UTC(2026, 10, 22);
const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'count' }] });
if (!parsed.ok) throw new Error('bad test catalog');
const meters = parsed.catalog;
const meter = meters.get('api_calls')!;

function event(over: Partial<UsageEvent> = {}): UsageEvent {
  return { id: 'e1', tenant: 't1', customer: 'c1', meter: 'api_calls', value: '1', timestamp: NOW - 1000, properties: {}, source: null, ...over };
}
function candidate(e: UsageEvent, offset: string, partition = 0): Candidate {
  return candidateOf({ topic: 'usage.events', partition, offset }, e, meter);
}
function storedFrom(c: Candidate): StoredKey {
  return { tenant: c.event.tenant, id: c.event.id, bodyHash: c.bodyHash, ...c.ref };
}

describe('dedupe decisions: first write wins', () => {
  it('given two identical copies in one batch, when decided, then the second is a duplicate', () => {
    const a = candidate(event(), '1');
    const b = candidate(event(), '2');
    expect(decideDedupe([a, b], new Map()).map((d) => d.kind)).toEqual(['new', 'duplicate']);
  });

  it('given the same key with another body, when decided, then it is a conflict and the first copy stays', () => {
    const a = candidate(event(), '1');
    const b = candidate(event({ value: '2' }), '2');
    const [first, second] = decideDedupe([a, b], new Map());
    expect(first!.kind).toBe('new');
    expect(second).toMatchObject({ kind: 'conflict', original: { offset: '1', bodyHash: a.bodyHash } });
  });

  it('given an event already in the ledger, when a copy arrives from another partition, then it is a duplicate', () => {
    const original = candidate(event(), '7', 3);
    const copy = candidate(event(), '1', 0);
    const stored = new Map([[dedupeKey('t1', 'e1'), storedFrom(original)]]);
    expect(decideDedupe([copy], stored)[0]).toMatchObject({ kind: 'duplicate', original: { partition: 3, offset: '7' } });
  });

  it('given a message stored before a crash, when it is read again, then it is redelivered (nothing written, not a duplicate)', () => {
    const c = candidate(event(), '42');
    const stored = new Map([[dedupeKey('t1', 'e1'), storedFrom(c)]]);
    expect(decideDedupe([c], stored)[0]!.kind).toBe('redelivered');
  });

  it('keeps tenants apart: the same id under two tenants is two events', () => {
    const a = candidate(event({ tenant: 'A' }), '1');
    const b = candidate(event({ tenant: 'B' }), '2');
    expect(decideDedupe([a, b], new Map()).map((d) => d.kind)).toEqual(['new', 'new']);
  });

  it('hashes bodies independently of property order', () => {
    expect(bodyHash(event({ properties: { a: '1', b: '2' } }))).toBe(bodyHash(event({ properties: { b: '2', a: '1' } })));
    expect(bodyHash(event({ customer: 'c2' }))).not.toBe(bodyHash(event()));
  });
});

describe('classifying a decoded message', () => {
  const ref = { topic: 'usage.events', partition: 0, offset: '5' };
  const opts = { now: NOW, maxFutureSkewMs: 300_000 };

  it('rejects an unknown meter with that reason, keeping tenant and id for the operator', () => {
    const r = classifyMessage(ref, null, Buffer.from('x'), { ok: true, record: { ...event(), meter: 'gpu' } }, meters, opts);
    expect(r).toMatchObject({ rejection: { code: 'unknown_meter', reason: 'unknown meter "gpu"', tenant: 't1', eventId: 'e1' } });
  });

  it('passes decode failures through with their code', () => {
    const r = classifyMessage(ref, null, Buffer.from('x'), { ok: false, code: 'bad_magic', reason: 'first byte 0x78' }, meters, opts);
    expect(r).toMatchObject({ rejection: { code: 'bad_magic', reason: 'first byte 0x78' } });
  });

  it('enriches a valid event with its meter definition', () => {
    const r = classifyMessage(ref, null, Buffer.from('x'), { ok: true, record: { ...event() } }, meters, opts);
    expect('candidate' in r && r.candidate.meter.definitionHash).toBe(meter.definitionHash);
  });
});
