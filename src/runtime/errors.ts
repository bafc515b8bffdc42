/**
 * One error type for the whole project. Adapters map their library errors into it, so the
 * pipeline decides "retry or stop" from `retriable` alone, never from a library's class.
 */
export class MeterlineError extends Error {
  readonly code: string;
  readonly retriable: boolean;

  constructor(code: string, message: string, opts: { retriable?: boolean; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MeterlineError';
    this.code = code;
    this.retriable = opts.retriable ?? false;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
