/**
 * Fault injection for chaos runs (never for production): which share of calls to a port fail
 * before they reach it, fail after it has done the work (the caller sees an error for a write
 * that happened — a lost acknowledgement, the hardest case), or are slowed down.
 * Written `fail=0.02,fail_after=0.02,slow=0.05,slow_ms=300`; every key optional.
 */
export interface FaultSpec {
  readonly fail: number;
  readonly failAfter: number;
  readonly slow: number;
  readonly slowMs: number;
}

const KEYS: Record<string, keyof FaultSpec> = { fail: 'fail', fail_after: 'failAfter', slow: 'slow', slow_ms: 'slowMs' };

export function parseFaultSpec(text: string): { ok: true; spec: FaultSpec } | { ok: false; reason: string } {
  const spec: { -readonly [K in keyof FaultSpec]: number } = { fail: 0, failAfter: 0, slow: 0, slowMs: 200 };
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [k, v, ...rest] = part.split('=');
    const key = KEYS[k ?? ''];
    const n = Number(v);
    if (!key || rest.length > 0 || v === undefined || v.trim() === '' || !Number.isFinite(n) || n < 0) {
      return { ok: false, reason: `bad fault "${part}": expected fail=P, fail_after=P, slow=P or slow_ms=MS (P in [0, 1])` };
    }
    if (key !== 'slowMs' && n > 1) return { ok: false, reason: `bad fault "${part}": a probability must lie in [0, 1]` };
    spec[key] = n;
  }
  if (spec.fail + spec.failAfter > 1) return { ok: false, reason: 'fail + fail_after must not exceed 1' };
  return { ok: true, spec };
}

export type FaultDecision = { readonly kind: 'none' | 'fail' | 'fail_after'; readonly delayMs: number };

/** One call's fate, from two uniform draws in [0, 1). Pure. */
export function decideFault(spec: FaultSpec, draw1: number, draw2: number): FaultDecision {
  const delayMs = draw2 < spec.slow ? spec.slowMs : 0;
  if (draw1 < spec.fail) return { kind: 'fail', delayMs };
  if (draw1 < spec.fail + spec.failAfter) return { kind: 'fail_after', delayMs };
  return { kind: 'none', delayMs };
}
