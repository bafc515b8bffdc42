import { customerKey } from '../domain/keys';
import type Stripe from 'stripe';
import type { ClickHouseClient } from '@clickhouse/client';
import { rangeLedger } from '../adapters/clickhouse/reconcile-store';
import { createPushStore, settledStatuses, streamKeyString, type PushRecord } from '../adapters/clickhouse/push-store';
import { createStreamStore } from '../adapters/clickhouse/stream-store';
import { listStripeMeters } from '../adapters/stripe/meters';
import type { ReadPacing } from '../adapters/stripe/read-retry';
import { minuteAligned, summarisedTotal } from '../adapters/stripe/summaries';
import { floorUnits, parseDecimal } from '../domain/decimal';
import { checkStripeMeters, type MeterConfigProblem } from '../domain/meter-config-check';
import type { MeterCatalog } from '../domain/meters';
import { computeDrift, unpushedUnits, type DriftRow } from '../domain/reconcile';
import type { Metrics } from '../runtime/metrics';

/**
 * How long after Stripe accepted a meter event its summaries may still not show it. Pushes
 * reported more recently are unsettled: a shortfall they explain is not drift.
 */
export const SUMMARY_SETTLE_MS = 15 * 60_000;

export interface ReconcileReport {
  readonly ok: boolean;
  readonly shadow: boolean;
  /** The compared range, widened to whole minutes (Stripe's summary bounds). */
  readonly range: { from: number; to: number };
  readonly drift: DriftRow[];
  /** Usage that cannot be pushed until the customer is mapped (`meterline customers import`). */
  readonly awaitingMapping: { tenant: string; customer: string; meter: string; total: string }[];
  /** Pushes that need a person: failed for good (too old, rejected by Stripe) or held (pending > 24 h). */
  readonly failed: Pick<PushRecord, 'identifier' | 'tenant' | 'customer' | 'meter' | 'value' | 'lastError' | 'windowStart'>[];
  readonly held: Pick<PushRecord, 'identifier' | 'tenant' | 'customer' | 'meter' | 'value' | 'lastError' | 'windowStart'>[];
  /** Meters whose Stripe meter does not match meters.yaml: the pusher holds them (nothing is sent; their usage shows as drift). */
  readonly heldMeters: MeterConfigProblem[];
}

export interface ReconcileOptions {
  readonly from: number;
  readonly to: number;
  readonly epsilon: number;
  readonly metrics?: Metrics;
  /** Paces Stripe reads (reconcile's share of the rate limit) and retries them when rate-limited. */
  readonly pacing?: ReadPacing;
  readonly clock?: () => number;
  /** Default SUMMARY_SETTLE_MS. */
  readonly settleMs?: number;
}

/**
 * Compares, per customer and delta meter over [from, to): what the push ledger reported with
 * timestamps in the range, what Stripe's event summaries hold for it, and usage no push carries
 * yet (see computeDrift). Without a Stripe client (shadow mode) the ledger stands in for Stripe.
 */
export async function reconcile(ch: ClickHouseClient, database: string, meters: MeterCatalog, stripe: Stripe | null, opts: ReconcileOptions): Promise<ReconcileReport> {
  const clock = opts.clock ?? Date.now;
  const range = minuteAligned(opts.from, opts.to);
  const deltaMeters = [...meters.values()].filter((m) => m.stripe?.mode === 'delta');
  const streams = createStreamStore(ch, database);
  const pushes = createPushStore(ch, database);
  const [mappings, ledger, totals, pushed] = await Promise.all([
    streams.customerMappings(),
    rangeLedger(ch, database, deltaMeters.map((m) => m.name), range.from, range.to, clock() - (opts.settleMs ?? SUMMARY_SETTLE_MS)),
    streams.deltaStreams(deltaMeters.map((m) => m.name)),
    pushes.pushedDeltas(settledStatuses(stripe === null)),
  ]);
  const stripeMeters = stripe ? await listStripeMeters(stripe, opts.pacing) : [];
  const heldMeters = stripe ? [...checkStripeMeters(meters, stripeMeters).problems] : [];
  const meterIds = new Map(stripeMeters.filter((m) => m.status === 'active').map((m) => [m.eventName, m.id]));
  // Usage no push carries yet belongs to the range its stream's newest window falls in.
  const unpushed = new Map(
    totals.filter((s) => s.windowStart >= range.from && s.windowStart < range.to).map((s) => [streamKeyString(s), unpushedUnits(s.total, pushed.get(streamKeyString(s)) ?? 0n)]),
  );
  const rows = new Map(ledger.map((l) => [streamKeyString(l), l]));
  for (const s of totals) {
    const key = streamKeyString(s);
    if ((unpushed.get(key) ?? 0n) !== 0n && !rows.has(key)) rows.set(key, { tenant: s.tenant, customer: s.customer, meter: s.meter, local: '0', reported: 0n, recentlyReported: 0n, pending: 0n });
  }

  const drift: DriftRow[] = [];
  for (const [key, l] of rows) {
    const stripeCustomer = mappings.get(customerKey(l));
    if (!stripeCustomer) continue; // listed under awaiting mapping instead
    const eventName = meters.get(l.meter)!.stripe!.eventName;
    let billed: bigint | null = null;
    if (stripe) {
      const meterId = meterIds.get(eventName);
      billed = meterId ? await summarisedTotal(stripe, meterId, stripeCustomer, range.from, range.to, opts.pacing) : 0n;
    }
    drift.push(computeDrift({ ...l, unpushed: unpushed.get(key) ?? 0n, stripe: billed }, opts.epsilon));
  }
  for (const m of deltaMeters) {
    const worst = Math.max(0, ...drift.filter((d) => d.meter === m.name).map((d) => d.relative));
    opts.metrics?.reconcileDrift.set({ meter: m.name }, worst);
  }

  const awaitingMapping = totals
    .filter((s) => !mappings.has(customerKey(s)))
    .filter((s) => {
      const d = parseDecimal(s.total);
      return d.ok && floorUnits(d.units) !== 0n;
    })
    .map((s) => ({ tenant: s.tenant, customer: s.customer, meter: s.meter, total: s.total }));

  const brief = (p: PushRecord) => ({ identifier: p.identifier, tenant: p.tenant, customer: p.customer, meter: p.meter, value: p.value, lastError: p.lastError, windowStart: p.windowStart });
  const failed = (await pushes.list({ status: 'failed' })).map(brief);
  const held = (await pushes.list({ status: 'held' })).map(brief);
  // A held meter is not a failure of its own: its usage, never pushed, shows as drift.
  return { ok: drift.every((d) => d.ok) && held.length === 0, shadow: stripe === null, range, drift, awaitingMapping, failed, held, heldMeters };
}
