import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';
import { dateTime64, dateTime64Micro } from './format';

/**
 * Where event time stands, persisted. Per partition, the highest event time stored (a restarted
 * worker's watermark starts from it: it may lag, never lead); and the worker's watermark itself,
 * from which every reader computes window states (open / closed / final).
 */
export interface WatermarkStore {
  loadPartitionMaxima(topic: string): Promise<Map<number, number>>;
  /** Saves partition maxima and (when known) the worker's watermark, in two small INSERTs. */
  save(topic: string, maxByPartition: ReadonlyMap<number, number>, watermark: number | null, now: number): Promise<void>;
  /** The highest watermark any worker saved (ms), or null: the one window states are computed from. */
  loadWatermark(): Promise<number | null>;
}

export function createWatermarkStore(client: ClickHouseClient, database: string): WatermarkStore {
  assertIdentifier(database);
  const t = (name: string) => `${database}.${name}`;
  return {
    async loadPartitionMaxima(topic) {
      const rs = await client.query({
        query: `SELECT partition, toString(toUnixTimestamp64Milli(max(max_event_time))) AS t FROM ${t('watermarks')} WHERE topic = {topic:String} GROUP BY partition`,
        query_params: { topic },
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ partition: number | string; t: string }>();
      return new Map(rows.map((r) => [Number(r.partition), Number(r.t)]));
    },

    async save(topic, maxByPartition, watermark, now) {
      await Promise.all([
        maxByPartition.size === 0
          ? undefined
          : client.insert({
              table: t('watermarks'),
              values: [...maxByPartition].map(([partition, max]) => ({ topic, partition, max_event_time: dateTime64(max), updated_at: dateTime64Micro(now) })),
              format: 'JSONEachRow',
            }),
        watermark === null || watermark <= 0
          ? undefined
          : client.insert({
              table: t('event_time_watermark'),
              values: [{ topic, watermark: dateTime64(watermark), updated_at: dateTime64Micro(now) }],
              format: 'JSONEachRow',
            }),
      ]);
    },

    async loadWatermark() {
      return readWatermark(client, database);
    },
  };
}

/** The persisted watermark window states are computed from (ms), or null before any was saved. */
export async function readWatermark(client: ClickHouseClient, database: string): Promise<number | null> {
  assertIdentifier(database);
  const rs = await client.query({
    query: `SELECT toString(toUnixTimestamp64Milli(max(watermark))) AS wm, count() AS n FROM ${database}.event_time_watermark`,
    format: 'JSONEachRow',
  });
  const [r] = await rs.json<{ wm: string; n: string | number }>();
  return r && Number(r.n) > 0 ? Number(r.wm) : null;
}
