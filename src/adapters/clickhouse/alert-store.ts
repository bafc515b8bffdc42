import type { ClickHouseClient } from '@clickhouse/client';
import { formatDecimal, parseDecimal } from '../../domain/decimal';
import type { UsageAlert } from '../alerts/alert-codec';
import { dateTime64, dateTime64Micro } from './format';
import { assertIdentifier } from './migrations';
import { scopeCondition, type StreamScope } from './stream-scope';

/** pending: recorded, maybe not yet on the topic; published: on the topic; delivered: the webhook answered 2xx. */
export type AlertStatus = 'pending' | 'published' | 'delivered';

export interface AlertRecord extends UsageAlert {
  readonly status: AlertStatus;
  readonly deliveryAttempts: number;
}

export interface AlertStore {
  /** Alert ids already recorded (any status) for these streams, in billing periods starting at or after `fromPeriod`. */
  recordedIds(scope: StreamScope, fromPeriod: number): Promise<Set<string>>;
  /** One INSERT: a new state of each alert (the higher status wins, then the later write). */
  record(alerts: readonly UsageAlert[], status: AlertStatus, opts: { now: number; deliveryAttempts?: number; lastError?: string }): Promise<void>;
  /** Every alert whose latest state is `status`, oldest first. */
  list(status: AlertStatus): Promise<AlertRecord[]>;
}

const RANK: Readonly<Record<AlertStatus, number>> = { pending: 0, published: 1, delivered: 2 };
/** A later status always outranks an earlier one, whatever the clocks say; within one status the later write wins. */
const RANK_STEP = 2 ** 42;

const units = (text: string): bigint => {
  const d = parseDecimal(text);
  if (!d.ok) throw new Error(`usage_alerts: ${d.reason}`);
  return d.units;
};

export function createAlertStore(client: ClickHouseClient, database: string): AlertStore {
  assertIdentifier(database);
  const table = `${database}.usage_alerts`;
  return {
    async recordedIds(scope, fromPeriod) {
      if (scope?.length === 0) return new Set();
      const streams = scopeCondition(scope);
      const rs = await client.query({
        query: `SELECT DISTINCT alert_id FROM ${table} WHERE ${streams.sql} AND period_start >= fromUnixTimestamp64Milli({from:Int64})`,
        query_params: { from: fromPeriod, ...streams.params },
        format: 'JSONEachRow',
      });
      return new Set((await rs.json<{ alert_id: string }>()).map((r) => r.alert_id));
    },

    async record(alerts, status, opts) {
      if (alerts.length === 0) return;
      await client.insert({
        table,
        format: 'JSONEachRow',
        values: alerts.map((a) => ({
            alert_id: a.alertId,
            tenant: a.tenant,
            customer: a.customer,
            meter: a.meter,
            period_start: dateTime64(a.periodStart),
            period_end: dateTime64(a.periodEnd),
            threshold_percent: formatDecimal(a.thresholdUnits),
            allotment: formatDecimal(a.limitUnits),
            period_total: formatDecimal(a.totalUnits),
            status,
            delivery_attempts: opts.deliveryAttempts ?? 0,
            last_error: opts.lastError ?? '',
            created_at: dateTime64(a.detectedAt),
            updated_at: dateTime64Micro(opts.now),
            version: RANK[status] * RANK_STEP + opts.now,
        })),
      });
    },

    async list(status) {
      const rs = await client.query({
        query: `
          SELECT alert_id, tenant, customer, meter, toString(toUnixTimestamp64Milli(period_start)) AS ps, toString(toUnixTimestamp64Milli(period_end)) AS pe,
                 toString(threshold_percent) AS threshold, toString(allotment) AS allotment, toString(period_total) AS total,
                 status, delivery_attempts, toString(toUnixTimestamp64Milli(created_at)) AS created
          FROM ${table} FINAL
          WHERE status = {status:String}
          ORDER BY created_at, alert_id`,
        query_params: { status },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string | number>>();
      return rows.map((r) => ({
        alertId: String(r.alert_id),
        tenant: String(r.tenant),
        customer: String(r.customer),
        meter: String(r.meter),
        periodStart: Number(r.ps),
        periodEnd: Number(r.pe),
        thresholdUnits: units(String(r.threshold)),
        limitUnits: units(String(r.allotment)),
        totalUnits: units(String(r.total)),
        detectedAt: Number(r.created),
        status: String(r.status) as AlertStatus,
        deliveryAttempts: Number(r.delivery_attempts),
      }));
    },
  };
}
