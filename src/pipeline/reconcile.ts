import type Stripe from 'stripe';
import type { ClickHouseClient } from '@clickhouse/client';
import { localRangeTotals } from '../adapters/clickhouse/reconcile-store';
import { createPushStore, type PushRecord } from '../adapters/clickhouse/push-store';
import { createStreamStore } from '../adapters/clickhouse/stream-store';
import { meterIdsByEventName, summarisedTotal } from '../adapters/stripe/summaries';
import { floorUnits, parseDecimal } from '../domain/decimal';
import type { MeterCatalog } from '../domain/meters';
import { computeDrift, type DriftRow } from '../domain/reconcile';
import type { Metrics } from '../runtime/metrics';

export interface ReconcileReport {
  readonly ok: boolean;
  readonly shadow: boolean;
  readonly drift: DriftRow[];
  /** Usage that cannot be pushed until the customer is mapped (`meterline customers import`). */
  readonly awaitingMapping: { tenant: string; customer: string; meter: string; total: string }[];
  /** Pushes that need a person: failed for good (too old, rejected by Stripe) or held (pending > 24 h). */
  readonly failed: Pick<PushRecord, 'identifier' | 'tenant' | 'customer' | 'meter' | 'value' | 'lastError' | 'windowStart'>[];
  readonly held: Pick<PushRecord, 'identifier' | 'tenant' | 'customer' | 'meter' | 'value' | 'lastError' | 'windowStart'>[];
}

/**
 * Compares, per customer and delta meter over [from, to): the exact local total, what the push
 * ledger says was reported, and what Stripe's event summaries hold. Without a Stripe client
 * (shadow mode) the ledger stands in for Stripe.
 */
export async function reconcile(
  ch: ClickHouseClient,
  database: string,
  meters: MeterCatalog,
  stripe: Stripe | null,
  opts: { from: number; to: number; epsilon: number; metrics?: Metrics },
): Promise<ReconcileReport> {
  const deltaMeters = [...meters.values()].filter((m) => m.stripe?.mode === 'delta');
  const streams = createStreamStore(ch, database);
  const mappings = await streams.customerMappings();
  const locals = await localRangeTotals(ch, database, deltaMeters.map((m) => m.name), opts.from, opts.to);
  const meterIds = stripe ? await meterIdsByEventName(stripe) : new Map<string, string>();

  const drift: DriftRow[] = [];
  for (const l of locals) {
    const stripeCustomer = mappings.get(`${l.tenant}\u0000${l.customer}`);
    if (!stripeCustomer) continue; // listed under awaiting mapping instead
    const eventName = meters.get(l.meter)!.stripe!.eventName;
    let billed: bigint | null = null;
    if (stripe) {
      const meterId = meterIds.get(eventName);
      billed = meterId ? await summarisedTotal(stripe, meterId, stripeCustomer, opts.from, opts.to) : 0n;
    }
    drift.push(computeDrift({ ...l, stripe: billed }, opts.epsilon));
  }
  for (const m of deltaMeters) {
    const worst = Math.max(0, ...drift.filter((d) => d.meter === m.name).map((d) => d.relative));
    opts.metrics?.reconcileDrift.set({ meter: m.name }, worst);
  }

  const awaitingMapping = (await streams.deltaStreams(deltaMeters.map((m) => m.name)))
    .filter((s) => !mappings.has(`${s.tenant}\u0000${s.customer}`))
    .filter((s) => {
      const d = parseDecimal(s.total);
      return d.ok && floorUnits(d.units) !== 0n;
    })
    .map((s) => ({ tenant: s.tenant, customer: s.customer, meter: s.meter, total: s.total }));

  const pushes = createPushStore(ch, database);
  const brief = (p: PushRecord) => ({ identifier: p.identifier, tenant: p.tenant, customer: p.customer, meter: p.meter, value: p.value, lastError: p.lastError, windowStart: p.windowStart });
  const failed = (await pushes.list({ status: 'failed' })).map(brief);
  const held = (await pushes.list({ status: 'held' })).map(brief);
  return { ok: drift.every((d) => d.ok) && held.length === 0, shadow: stripe === null, drift, awaitingMapping, failed, held };
}
