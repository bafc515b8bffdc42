export type Encoding = 'single-object' | 'confluent';

export type DecodeFailureCode = 'empty' | 'bad_magic' | 'unknown_schema' | 'malformed_avro';

export type Decoded =
  | { ok: true; record: Record<string, unknown>; encoding: Encoding; writerSchemaVersion: number | null; schemaId?: number }
  | { ok: false; code: DecodeFailureCode; reason: string };

export interface EventDecoder {
  /** One result per input, in order. Throws only when the schema registry is unavailable. */
  decodeMany(buffers: (Buffer | null)[]): Promise<Decoded[]>;
}
