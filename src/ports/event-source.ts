import type { SourceRef } from '../domain/ingest-decision';

/** One message as the source delivered it. */
export interface SourceMessage {
  readonly ref: SourceRef;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /**
   * Published by `meterline backfill` (the `meterline-backfill` header): historical usage that is
   * counted even in windows the watermark has made final. The flag travels with the record, so a
   * replay of the topic decides exactly as the first read did.
   */
  readonly backfill?: boolean;
}

/** Consecutive messages of one partition. */
export interface SourceBatch {
  readonly partition: number;
  readonly messages: readonly SourceMessage[];
  /** The offset after the batch's last message: what a commit of it records. */
  readonly next: string;
  /** The partition's end when the batch was fetched (`highWatermark − next` messages wait). */
  readonly highWatermark: string;
}

/** An ingest unit: batches of several partitions from one fetch, stored together. */
export type SourceUnit = readonly SourceBatch[];

/**
 * What the source hands fetched units to. `accept` is called once per fetch, one call at a time,
 * in order; it resolves once the units are decided and being written (the source then fetches
 * again while they are written), and commits each unit later through `commit`, in unit order,
 * each only once it is durable. Units it accepted and could not store go back through `rewind`;
 * if `accept` rejects, none of its units not rewound were taken and they are delivered again.
 */
export interface UnitHandler {
  accept(units: readonly SourceUnit[]): Promise<void>;
  /** Resolves once every accepted unit is committed or rewound: nothing is being written. */
  drain(): Promise<void>;
}

export interface SourceStatus {
  /** Connected to the cluster (no disconnect or crash since). */
  readonly connected: boolean;
  /** False once the source stopped for good (a crash it does not recover from). */
  readonly running: boolean;
  /** Partitions this worker currently owns. */
  readonly partitions: readonly number[];
}

export interface EventSource {
  start(ingest: UnitHandler): Promise<void>;
  /**
   * Records that everything up to the unit's batches is stored (per partition, one request), then
   * lets the source move on. A commit refused because the group is rebalancing is not an error:
   * the partitions' next owner re-reads the unit and finds it stored.
   */
  commit(unit: SourceUnit): Promise<void>;
  /**
   * Accepted units that were not stored (oldest first): the source delivers their messages again,
   * from each partition's first uncommitted offset (everything later on it comes again too).
   */
  rewind(units: readonly SourceUnit[]): void;
  /** Called with this worker's partitions after every assignment (a join or a rebalance). */
  onAssigned(listener: (partitions: readonly number[]) => void): void;
  /** Whether this worker owns `partition` now, as the group last confirmed it. */
  owns(partition: number): boolean;
  status(): SourceStatus;
  /** Rejects if the source stopped for good. */
  readonly crashed: Promise<never>;
  /** Lets the units in progress finish (stored and committed), then leaves. */
  stop(): Promise<void>;
}
