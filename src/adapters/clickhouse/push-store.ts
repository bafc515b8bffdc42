import { periodKey, streamKey } from '../../domain/keys';
import type { ClickHouseClient } from '@clickhouse/client';
import type { PlannedPush } from '../../domain/push-plan';
import { assertIdentifier } from './migrations';
import { dateTime64, dateTime64Micro } from './format';
import { groupCommit } from './group-commit';

/** `resolved`: a failed or held push a person settled (`meterline pushes resolve`); its value stays pushed. */
export type PushStatus = 'pending' | 'reported' | 'failed' | 'shadow' | 'held' | 'resolved';

export interface PushRecord extends PlannedPush {
  readonly status: PushStatus;
  readonly attempts: number;
  readonly lastError: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Statuses whose value counts as pushed: in live mode shadow rows do not (they were never sent). */
export function settledStatuses(shadow: boolean): PushStatus[] {
  return shadow ? ['pending', 'reported', 'failed', 'held', 'resolved', 'shadow'] : ['pending', 'reported', 'failed', 'held', 'resolved'];
}

export interface PushStore {
  /**
   * A new state of a push; the latest write wins, except that a `final` one (a failure Stripe
   * reported) outranks every later non-final write: a resend answered "already exists" must not
   * turn a push Stripe rejected back into reported.
   */
  record(push: PlannedPush, status: PushStatus, opts: RecordOptions): Promise<void>;
  list(filter?: { status?: PushStatus; tenant?: string; identifiers?: readonly string[] }): Promise<PushRecord[]>;
  /** Whole units pushed per delta stream (tenant \0 customer \0 meter). */
  pushedDeltas(statuses: readonly PushStatus[]): Promise<Map<string, bigint>>;
  /** Last value pushed per absolute stream and period (tenant \0 customer \0 meter \0 periodStart). */
  lastAbsolutes(statuses: readonly PushStatus[]): Promise<Map<string, bigint>>;
}

export interface RecordOptions {
  attempts: number;
  lastError?: string;
  createdAt: number;
  now: number;
  final?: boolean;
}

/** Added to a final write's version: far above any time-based version for millennia, well under 2^53. */
const FINAL_VERSION_OFFSET = 2 ** 50;

function pushRow(push: PlannedPush, status: PushStatus, opts: RecordOptions): Record<string, unknown> {
  return {
    identifier: push.identifier,
    tenant: push.tenant,
    customer: push.customer,
    meter: push.meter,
    mode: push.mode,
    event_name: push.eventName,
    stripe_customer_id: push.stripeCustomerId,
    window_start: dateTime64(push.windowStart),
    value: push.value.toString(),
    pushed_from: push.pushedFrom.toString(),
    pushed_to: push.pushedTo.toString(),
    event_timestamp: push.timestamp,
    status,
    attempts: opts.attempts,
    last_error: opts.lastError ?? '',
    created_at: dateTime64Micro(opts.createdAt),
    updated_at: dateTime64Micro(opts.now),
    // Later state changes win; the +rank breaks ties within one millisecond.
    version: opts.now * 8 + (status === 'pending' ? 0 : 1) + (opts.final ? FINAL_VERSION_OFFSET : 0),
  };
}

export function streamKeyString(k: { tenant: string; customer: string; meter: string }): string {
  return streamKey(k);
}

export function createPushStore(client: ClickHouseClient, database: string): PushStore {
  assertIdentifier(database);
  const table = `${database}.stripe_pushes`;
  const writeRow = groupCommit<Record<string, unknown>>((values) => client.insert({ table, values, format: 'JSONEachRow' }).then(() => undefined));
  return {
    // Concurrent deliveries (up to the rate limit) each record their outcome: group commit
    // turns them into one INSERT per turn instead of one part per push.
    record: (push, status, opts) => writeRow(pushRow(push, status, opts)),

    async list(filter = {}) {
      const rs = await client.query({
        query: `
          SELECT identifier, tenant, customer, meter, mode, event_name, stripe_customer_id,
                 toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(value) AS value,
                 toString(pushed_from) AS pushed_from, toString(pushed_to) AS pushed_to, toString(toUnixTimestamp(event_timestamp)) AS ts,
                 status, attempts, last_error, toString(toUnixTimestamp64Milli(created_at)) AS created, toString(toUnixTimestamp64Milli(updated_at)) AS updated
          FROM ${table} FINAL
          WHERE ({status:String} = '' OR status = {status:String}) AND ({tenant:String} = '' OR tenant = {tenant:String})
            AND (empty({ids:Array(String)}) OR identifier IN {ids:Array(String)})
          ORDER BY created_at, identifier`,
        query_params: { status: filter.status ?? '', tenant: filter.tenant ?? '', ids: filter.identifiers ?? [] },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<Record<string, string | number>>();
      return rows.map((r) => ({
        identifier: String(r.identifier),
        tenant: String(r.tenant),
        customer: String(r.customer),
        meter: String(r.meter),
        mode: r.mode === 'absolute' ? 'absolute' : 'delta',
        eventName: String(r.event_name),
        stripeCustomerId: String(r.stripe_customer_id),
        windowStart: Number(r.ws),
        value: BigInt(String(r.value)),
        pushedFrom: BigInt(String(r.pushed_from)),
        pushedTo: BigInt(String(r.pushed_to)),
        timestamp: Number(r.ts),
        status: String(r.status) as PushStatus,
        attempts: Number(r.attempts),
        lastError: String(r.last_error),
        createdAt: Number(r.created),
        updatedAt: Number(r.updated),
      }));
    },

    async pushedDeltas(statuses) {
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(sum(value)) AS pushed
          FROM ${table} FINAL
          WHERE mode = 'delta' AND status IN {statuses:Array(String)}
          GROUP BY tenant, customer, meter`,
        query_params: { statuses },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ tenant: string; customer: string; meter: string; pushed: string }>();
      return new Map(rows.map((r) => [streamKeyString(r), BigInt(r.pushed)]));
    },

    async lastAbsolutes(statuses) {
      const rs = await client.query({
        query: `
          SELECT tenant, customer, meter, toString(toUnixTimestamp64Milli(window_start)) AS ws, toString(argMax(pushed_to, (created_at, identifier))) AS last
          FROM ${table} FINAL
          WHERE mode = 'absolute' AND status IN {statuses:Array(String)}
          GROUP BY tenant, customer, meter, window_start`,
        query_params: { statuses },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ tenant: string; customer: string; meter: string; ws: string; last: string }>();
      return new Map(rows.map((r) => [periodKey(r, r.ws), BigInt(r.last)]));
    },
  };
}
