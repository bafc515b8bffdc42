import { allotmentKey } from './keys';
import { z } from 'zod';
import { formatDecimal, parseDecimal } from './decimal';

/**
 * An allotment: how much of a meter a customer may use per billing period, and the shares of it
 * (percent) at which an alert is raised. Without `customer` it applies to every customer of the
 * tenant; a customer-specific allotment for the same meter replaces it for that customer.
 */
export interface Allotment {
  readonly tenant: string;
  readonly meter: string;
  /** null: every customer of the tenant without an allotment of its own. */
  readonly customer: string | null;
  /** Exact decimal, nano-units (scale 9), > 0. */
  readonly limitUnits: bigint;
  /** Percentages in ascending order, each as exact nano-units (80 % → 80_000_000_000n), distinct, > 0. */
  readonly thresholds: readonly bigint[];
}

export interface AllotmentCatalog {
  readonly allotments: readonly Allotment[];
  /** Meters with at least one allotment: the only ones whose totals are watched. */
  readonly meters: readonly string[];
  /** The allotment in force for one customer's meter, or undefined. */
  allotmentFor(tenant: string, customer: string, meter: string): Allotment | undefined;
}

/** The highest threshold accepted: 1000 % of the limit (alerts well past the allotment). */
const MAX_PERCENT_UNITS = 1000n * 1_000_000_000n;

const decimalInput = z.union([z.string(), z.number()]);
const AllotmentSchema = z
  .object({
    tenant: z.string().min(1, 'must not be empty'),
    meter: z.string().min(1, 'must not be empty'),
    customer: z.string().min(1, 'must not be empty (leave it out for every customer)').optional(),
    limit: decimalInput,
    thresholds: z.array(decimalInput).min(1, 'must list at least one percentage').default([80, 100]),
  })
  .strict();
const FileSchema = z.object({ allotments: z.array(z.unknown()) }).strict();

/** An exact decimal from a YAML/JSON value; a number beyond 2^53 may already have been rounded by the parser. */
function exactDecimal(v: string | number): { ok: true; units: bigint } | { ok: false; reason: string } {
  if (typeof v === 'number' && !Number.isSafeInteger(v) && Math.abs(v) > Number.MAX_SAFE_INTEGER) {
    return { ok: false, reason: 'is too large to be exact as a number: write it as a string ("12345678901234567890")' };
  }
  const d = parseDecimal(v);
  return d.ok ? d : { ok: false, reason: d.reason };
}

/**
 * Validates a parsed allotments file against the meter catalog and returns every problem at once
 * (with the allotment's position), so one edit fixes them all.
 */
export function parseAllotments(doc: unknown, knownMeters: ReadonlySet<string>): { ok: true; catalog: AllotmentCatalog } | { ok: false; problems: string[] } {
  const file = FileSchema.safeParse(doc);
  if (!file.success) return { ok: false, problems: file.error.issues.map((i) => `${['', ...i.path].join('.') || '.'}: ${i.message}`) };
  const problems: string[] = [];
  const allotments: Allotment[] = [];
  const seen = new Set<string>();
  file.data.allotments.forEach((raw, index) => {
    const where = `allotments[${index}]`;
    const parsed = AllotmentSchema.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${where}${i.path.map((p) => `.${String(p)}`).join('')}: ${i.message}`);
      return;
    }
    const a = parsed.data;
    const before = problems.length;
    if (!knownMeters.has(a.meter)) problems.push(`${where}.meter: unknown meter ${JSON.stringify(a.meter)} (not in the meters file)`);
    const limit = exactDecimal(a.limit);
    if (!limit.ok) problems.push(`${where}.limit: ${limit.reason}`);
    else if (limit.units <= 0n) problems.push(`${where}.limit: must be greater than 0`);
    const thresholds: bigint[] = [];
    a.thresholds.forEach((t, ti) => {
      const pct = exactDecimal(t);
      if (!pct.ok) problems.push(`${where}.thresholds[${ti}]: ${pct.reason}`);
      else if (pct.units <= 0n || pct.units > MAX_PERCENT_UNITS) problems.push(`${where}.thresholds[${ti}]: must be a percentage above 0 and at most 1000`);
      else if (thresholds.includes(pct.units)) problems.push(`${where}.thresholds[${ti}]: duplicate threshold ${formatDecimal(pct.units)}`);
      else thresholds.push(pct.units);
    });
    const key = allotmentKey(a.tenant, a.meter, a.customer ?? '');
    if (seen.has(key)) problems.push(`${where}: a second allotment for tenant ${JSON.stringify(a.tenant)}, meter ${JSON.stringify(a.meter)}${a.customer ? `, customer ${JSON.stringify(a.customer)}` : ''}`);
    seen.add(key);
    if (problems.length > before || !limit.ok) return;
    allotments.push({ tenant: a.tenant, meter: a.meter, customer: a.customer ?? null, limitUnits: limit.units, thresholds: thresholds.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)) });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, catalog: allotmentCatalog(allotments) };
}

export function allotmentCatalog(allotments: readonly Allotment[]): AllotmentCatalog {
  const byKey = new Map(allotments.map((a) => [allotmentKey(a.tenant, a.meter, a.customer ?? ''), a]));
  return {
    allotments,
    meters: [...new Set(allotments.map((a) => a.meter))].sort(),
    // A customer's own allotment first, then the tenant's meter-wide one.
    allotmentFor: (tenant, customer, meter) => byKey.get(allotmentKey(tenant, meter, customer)) ?? byKey.get(allotmentKey(tenant, meter, '')),
  };
}
