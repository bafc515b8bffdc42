import type { Rejection } from '../domain/ingest-decision';

export interface DeadLetterSink {
  /** Resolves once every dead letter is acknowledged (acks = -1). */
  send(rejections: readonly Rejection[]): Promise<void>;
  close(): Promise<void>;
}
