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
 * Hands over fetched units, in order, to `ingest`, one call at a time. `ingest` must commit each
 * unit (through `commit`, in unit order, each only once it is durable) before resolving; if it
 * rejects, whatever it did not commit is delivered again (from the last committed offsets).
 */
export type UnitHandler = (units: readonly SourceUnit[]) => Promise<void>;

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
  /** Called with this worker's partitions after every assignment (a join or a rebalance). */
  onAssigned(listener: (partitions: readonly number[]) => void): void;
  /** Whether this worker owns `partition` now, as the group last confirmed it. */
  owns(partition: number): boolean;
  status(): SourceStatus;
  /** Rejects if the source stopped for good. */
  readonly crashed: Promise<never>;
  /** Lets the unit in progress finish (stored and committed), then leaves. */
  stop(): Promise<void>;
}
