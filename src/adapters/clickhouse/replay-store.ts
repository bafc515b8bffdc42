import type { ClickHouseClient } from '@clickhouse/client';
import { assertIdentifier } from './migrations';
import { dateTime64Micro } from './format';

/** A `meterline replay` run: its consumer group holds the progress, this row the plan. */
export interface ReplayRun {
  readonly runId: string;
  readonly topic: string;
  readonly groupId: string;
  readonly rangeFrom: number | null;
  readonly rangeTo: number | null;
  /** Per partition, where the run ends (exclusive): the topic's end offsets when it started. */
  readonly endOffsets: ReadonlyMap<number, bigint>;
  readonly status: 'running' | 'finished';
  readonly startedAt: number;
}

export interface ReplayStore {
  /** The newest unfinished run over the same topic and event-time range, if any. */
  findUnfinished(topic: string, rangeFrom: number | null, rangeTo: number | null): Promise<ReplayRun | null>;
  save(run: ReplayRun, now: number, summary?: unknown): Promise<void>;
}

const micros = (v: string) => Date.parse(`${v.replace(' ', 'T')}Z`);

export function createReplayStore(client: ClickHouseClient, database: string): ReplayStore {
  assertIdentifier(database);
  return {
    async findUnfinished(topic, rangeFrom, rangeTo) {
      const rs = await client.query({
        query: `
          SELECT run_id, topic, group_id, toString(range_from) AS rf, toString(range_to) AS rt,
                 end_offsets, status, toString(started_at) AS started
          FROM ${database}.replay_runs FINAL
          WHERE topic = {topic:String} AND status = 'running'
            AND range_from IS NOT DISTINCT FROM {from:Nullable(Int64)} AND range_to IS NOT DISTINCT FROM {to:Nullable(Int64)}
          ORDER BY started_at DESC
          LIMIT 1`,
        query_params: { topic, from: rangeFrom, to: rangeTo },
        format: 'JSONEachRow',
      });
      const [row] = await rs.json<Record<string, string | null>>();
      if (!row) return null;
      const offsets = JSON.parse(String(row.end_offsets)) as Record<string, string>;
      return {
        runId: String(row.run_id),
        topic: String(row.topic),
        groupId: String(row.group_id),
        rangeFrom: row.rf === null ? null : Number(row.rf),
        rangeTo: row.rt === null ? null : Number(row.rt),
        endOffsets: new Map(Object.entries(offsets).map(([p, o]) => [Number(p), BigInt(o)])),
        status: 'running',
        startedAt: micros(String(row.started)),
      };
    },

    async save(run, now, summary) {
      await client.insert({
        table: `${database}.replay_runs`,
        values: [
          {
            run_id: run.runId,
            topic: run.topic,
            group_id: run.groupId,
            range_from: run.rangeFrom,
            range_to: run.rangeTo,
            end_offsets: JSON.stringify(Object.fromEntries([...run.endOffsets].map(([p, o]) => [String(p), o.toString()]))),
            status: run.status,
            started_at: dateTime64Micro(run.startedAt),
            updated_at: dateTime64Micro(now),
            summary: summary === undefined ? '' : JSON.stringify(summary),
          },
        ],
        format: 'JSONEachRow',
      });
    },
  };
}
