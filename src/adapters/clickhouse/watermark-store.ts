import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';
import { dateTime64, dateTime64Micro } from './format';

import type { WatermarkStore } from '../../ports/watermarks';

export type { WatermarkStore };

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
