import { createHash } from 'node:crypto';
import { z } from 'zod';

export type Aggregation = 'sum' | 'count' | 'max' | 'last' | 'unique_count';
export type WindowSize = 'minute' | 'hour' | 'day';
/** delta: send `floor(total) - pushed` to a Stripe meter with formula `sum`;
 *  absolute: send the billing-period value to a Stripe meter with formula `last`. */
export type PushMode = 'delta' | 'absolute';

export interface MeterDefinition {
  readonly name: string;
  readonly aggregation: Aggregation;
  readonly window: WindowSize;
  readonly allowedLatenessMs: number;
  /** unique_count only: the property whose distinct values are counted. */
  readonly uniqueProperty: string | null;
  /** null: metered, never billed through Stripe. */
  readonly stripe: { readonly eventName: string; readonly mode: PushMode } | null;
  /** Identifies this exact definition; stored with every event counted under it. */
  readonly definitionHash: string;
}

export type MeterCatalog = ReadonlyMap<string, MeterDefinition>;

const DURATION_RE = /^(\d+)\s*(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** "90s", "15m", "2h", "1d", or a number of milliseconds. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  const m = DURATION_RE.exec(v.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS] : undefined;
}

const MeterSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/, 'must be 1-100 letters, digits, "_", ".", ":" or "-"'),
    aggregation: z.enum(['sum', 'count', 'max', 'last', 'unique_count']),
    window: z.enum(['minute', 'hour', 'day']).default('hour'),
    allowed_lateness: z.union([z.string(), z.number()]).default('1h'),
    unique_property: z.string().min(1).optional(),
    stripe: z
      .object({
        event_name: z.string().min(1).max(100),
        mode: z.enum(['delta', 'absolute']).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

const FileSchema = z.object({ meters: z.array(z.unknown()).min(1, 'must list at least one meter') }).strict();

/**
 * Validates a parsed meters file and returns the catalog, or every problem found (with the
 * meter's position), so one edit fixes them all.
 */
export function parseMeterCatalog(doc: unknown): { ok: true; catalog: MeterCatalog } | { ok: false; problems: string[] } {
  const file = FileSchema.safeParse(doc);
  if (!file.success) return { ok: false, problems: file.error.issues.map((i) => `${['', ...i.path].join('.') || '.'}: ${i.message}`) };
  const problems: string[] = [];
  const catalog = new Map<string, MeterDefinition>();
  file.data.meters.forEach((raw, index) => {
    const where = `meters[${index}]`;
    const parsed = MeterSchema.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${where}${i.path.map((p) => `.${String(p)}`).join('')}: ${i.message}`);
      return;
    }
    const m = parsed.data;
    const lateness = parseDuration(m.allowed_lateness);
    if (lateness === undefined) problems.push(`${where}.allowed_lateness: must be a duration such as 30m, 2h or 1d`);
    if (m.aggregation === 'unique_count' && !m.unique_property) problems.push(`${where}.unique_property: required for unique_count`);
    if (m.aggregation !== 'unique_count' && m.unique_property) problems.push(`${where}.unique_property: only for unique_count`);
    const defaultMode: PushMode = m.aggregation === 'sum' || m.aggregation === 'count' ? 'delta' : 'absolute';
    const mode = m.stripe?.mode ?? defaultMode;
    if (m.stripe && mode === 'delta' && defaultMode === 'absolute') {
      problems.push(`${where}.stripe.mode: a ${m.aggregation} meter cannot be pushed as deltas (use absolute)`);
    }
    if (catalog.has(m.name)) problems.push(`${where}.name: duplicate meter ${JSON.stringify(m.name)}`);
    if (lateness === undefined) return;
    const def = {
      name: m.name,
      aggregation: m.aggregation,
      window: m.window,
      allowedLatenessMs: lateness,
      uniqueProperty: m.unique_property ?? null,
      stripe: m.stripe ? { eventName: m.stripe.event_name, mode } : null,
    };
    catalog.set(m.name, { ...def, definitionHash: createHash('sha256').update(JSON.stringify(def)).digest('hex').slice(0, 16) });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, catalog };
}
