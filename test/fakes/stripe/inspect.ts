/** Read-only views over the fake's state for assertions. */
import type { AcceptedEvent, CallRecord, FakeStripeState } from './state';

/** Canonical JSON (sorted keys) so that equal parameters fingerprint equally. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const live = (e: AcceptedEvent): boolean => e.cancelledAt === null;

export function acceptedEvents(state: FakeStripeState, f: { customer?: string; eventName?: string; includeCancelled?: boolean } = {}): AcceptedEvent[] {
  return state.events.filter((e) => (f.includeCancelled || live(e)) && (f.customer === undefined || e.customer === f.customer) && (f.eventName === undefined || e.eventName === f.eventName));
}

export function totals(state: FakeStripeState): Array<{ customer: string; eventName: string; total: bigint; count: number }> {
  const m = new Map<string, { customer: string; eventName: string; total: bigint; count: number }>();
  for (const e of state.events.filter(live)) {
    const k = `${e.customer}\u0000${e.eventName}`;
    const t = m.get(k) ?? { customer: e.customer, eventName: e.eventName, total: 0n, count: 0 };
    t.total += e.value;
    t.count++;
    m.set(k, t);
  }
  return [...m.values()];
}

export type Variant = { eventName?: string; customer?: string; value?: string; timestamp?: number | string };

/** Identifiers sent (in any attempt, whatever its outcome) with more than one (event_name, customer, value, timestamp). */
export function identifierConflicts(state: FakeStripeState): Array<{ identifier: string; variants: Variant[] }> {
  const seen = new Map<string, Map<string, Variant>>();
  for (const a of state.attempts) {
    if (a.identifier === null || a.generated) continue;
    const vs = seen.get(a.identifier) ?? new Map<string, Variant>();
    vs.set(canonical([a.eventName, a.customer, a.value, a.timestamp]), { eventName: a.eventName, customer: a.customer, value: a.value, timestamp: a.timestamp });
    seen.set(a.identifier, vs);
  }
  return [...seen.entries()].filter(([, vs]) => vs.size > 1).map(([identifier, vs]) => ({ identifier, variants: [...vs.values()] }));
}

export function countCalls(calls: readonly CallRecord[], key: (c: CallRecord) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of calls) out[key(c)] = (out[key(c)] ?? 0) + 1;
  return out;
}
