import type { MeterCatalog, MeterDefinition } from './meters';
import { validateEvent, type UsageEvent, type ValidationOptions } from './usage-event';

/** Where a message came from. Offsets stay strings, as Kafka clients give them (they are int64). */
export interface SourceRef {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type RejectCode = 'empty' | 'bad_magic' | 'unknown_schema' | 'malformed_avro' | 'invalid_event' | 'unknown_meter';

export interface Rejection {
  readonly ref: SourceRef;
  readonly code: RejectCode;
  readonly reason: string;
  readonly key: Buffer | null;
  readonly raw: Buffer | null;
  readonly tenant: string | null;
  readonly eventId: string | null;
}

/** An event that passed decoding, validation and enrichment, waiting for the dedupe decision. */
export interface Candidate {
  readonly ref: SourceRef;
  readonly event: UsageEvent;
  readonly meter: MeterDefinition;
  readonly bodyHash: string;
  /** Its dedupe key, dedupeKey(tenant, id): built once, shared by every map of keys it enters. */
  readonly key: string;
}

/** What the ledger already holds for a (tenant, id). */
export interface StoredKey {
  readonly tenant: string;
  readonly id: string;
  readonly bodyHash: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

export type DedupeDecision =
  | { readonly kind: 'new'; readonly candidate: Candidate }
  | { readonly kind: 'duplicate'; readonly candidate: Candidate; readonly original: StoredKey }
  | { readonly kind: 'conflict'; readonly candidate: Candidate; readonly original: StoredKey }
  /** This very message (same topic, partition, offset) was stored before a crash or rebalance
   *  undid the offset commit: nothing to write, and not a duplicate either. */
  | { readonly kind: 'redelivered'; readonly candidate: Candidate };

export type DecodedInput =
  | { readonly ok: true; readonly record: Record<string, unknown> }
  | { readonly ok: false; readonly code: Exclude<RejectCode, 'invalid_event' | 'unknown_meter'>; readonly reason: string };

import { dedupeKey } from './keys';
import { sha256Hex } from './sha256';

export { dedupeKey };

/** sha256 of the canonical body (property keys sorted): equal keys with different hashes conflict. */
export function bodyHash(e: UsageEvent): string {
  const props = Object.keys(e.properties)
    .sort()
    .map((k) => [k, e.properties[k]]);
  return sha256Hex(JSON.stringify([e.tenant, e.id, e.customer, e.meter, e.value, e.timestamp, props, e.source]));
}

/** A valid, enriched event as a candidate for the dedupe decision. */
export function candidateOf(ref: SourceRef, event: UsageEvent, meter: MeterDefinition): Candidate {
  return { ref, event, meter, bodyHash: bodyHash(event), key: dedupeKey(event.tenant, event.id) };
}

/**
 * Decoded message → candidate or rejection. Pure; every message ends in exactly one of the two.
 */
export function classifyMessage(
  ref: SourceRef,
  key: Buffer | null,
  raw: Buffer | null,
  decoded: DecodedInput,
  meters: MeterCatalog,
  opts: ValidationOptions,
): { candidate: Candidate } | { rejection: Rejection } {
  const reject = (code: RejectCode, reason: string, e?: { tenant?: unknown; id?: unknown }) => ({
    rejection: {
      ref,
      code,
      reason,
      key,
      raw,
      tenant: typeof e?.tenant === 'string' ? e.tenant : null,
      eventId: typeof e?.id === 'string' ? e.id : null,
    },
  });
  if (!decoded.ok) return reject(decoded.code, decoded.reason);
  // A message that makes validation itself fail is a dead letter too: thrown here, it would
  // fail its batch again on every retry and stall the partition behind it.
  let valid: ReturnType<typeof validateEvent>;
  try {
    valid = validateEvent(decoded.record, opts);
  } catch (err) {
    return reject('invalid_event', `event could not be validated: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!valid.ok) return reject('invalid_event', valid.reason, decoded.record);
  const meter = meters.get(valid.event.meter);
  if (!meter) return reject('unknown_meter', `unknown meter ${JSON.stringify(valid.event.meter)}`, valid.event);
  return { candidate: candidateOf(ref, valid.event, meter) };
}

/**
 * The dedupe decision for a batch, in message order. First write wins: the earliest stored
 * copy (or, within the batch, the first copy) is the event; every later copy is a duplicate
 * (same body) or a conflict (different body). `stored` holds what the ledger had before the batch.
 */
export function decideDedupe(candidates: readonly Candidate[], stored: ReadonlyMap<string, StoredKey>): DedupeDecision[] {
  // The first copy of each key within the batch (a candidate carries what a StoredKey holds).
  const firstInBatch = new Map<string, Candidate>();
  return candidates.map((c): DedupeDecision => {
    const first = firstInBatch.get(c.key);
    const original = stored.get(c.key) ?? (first && storedKeyOf(first));
    if (!original) {
      firstInBatch.set(c.key, c);
      return { kind: 'new', candidate: c };
    }
    if (original.topic === c.ref.topic && original.partition === c.ref.partition && original.offset === c.ref.offset) {
      return { kind: 'redelivered', candidate: c };
    }
    return original.bodyHash === c.bodyHash ? { kind: 'duplicate', candidate: c, original } : { kind: 'conflict', candidate: c, original };
  });
}

/** What the ledger holds once a candidate decided new is stored. */
export function storedKeyOf(c: Candidate): StoredKey {
  return { tenant: c.event.tenant, id: c.event.id, bodyHash: c.bodyHash, topic: c.ref.topic, partition: c.ref.partition, offset: c.ref.offset };
}
