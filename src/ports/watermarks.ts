/**
 * Where event time stands, persisted. Per partition, the highest event time stored (a restarted
 * worker's watermark starts from it: it may lag, never lead); and the worker's watermark itself,
 * from which every reader computes window states (open / closed / final).
 */
export interface WatermarkStore {
  loadPartitionMaxima(topic: string): Promise<Map<number, number>>;
  /** Saves partition maxima and (when known) the worker's watermark. */
  save(topic: string, maxByPartition: ReadonlyMap<number, number>, watermark: number | null, now: number): Promise<void>;
  /** The highest watermark any worker saved (ms), or null: the one window states are computed from. */
  loadWatermark(): Promise<number | null>;
}
