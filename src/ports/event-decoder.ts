export type Encoding = 'single-object' | 'confluent';

export type DecodeFailureCode = 'empty' | 'bad_magic' | 'unknown_schema' | 'malformed_avro';

export type Decoded =
  | { ok: true; record: Record<string, unknown>; encoding: Encoding; writerSchemaVersion: number | null; schemaId?: number }
  | { ok: false; code: DecodeFailureCode; reason: string };

export interface EventDecoder {
  /** One result per input, in order. Throws only when the schema registry is unavailable. */
  decodeMany(buffers: (Buffer | null)[]): Promise<Decoded[]>;
  /**
   * The same results, each handed to `visit` as soon as it is decoded (in order), so a caller that
   * keeps only what it derives from a record lets the record die young — the ingest hot path,
   * where records kept for a whole unit cost the garbage collector a copy each. Unknown registry
   * ids are fetched first: throws, before visiting anything, only when the registry is unavailable.
   */
  decodeEach(buffers: (Buffer | null)[], visit: (decoded: Decoded, index: number) => void): Promise<void>;
}
