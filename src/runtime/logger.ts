import pino from 'pino';
import { MIN_SECRET_LENGTH, replaceSecretValues } from './redact';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout stays for command output such as query results).
 * Two layers keep secrets out: any field named like a secret is censored wherever it appears in
 * a log record, and the configured secret values themselves (`secrets`) are replaced in every
 * line written — so a secret quoted inside an error message or a URL never reaches the log.
 * Modules log through `logger.child({ module })`.
 */
export const REDACT_PATHS = [
  '*.stripeApiKey',
  '*.clickhousePassword',
  '*.password',
  '*.apiKey',
  '*.authorization',
  '*.webhookSecret',
  'stripeApiKey',
  'clickhousePassword',
  'password',
  'apiKey',
  'authorization',
  'webhookSecret',
  '*.headers.authorization',
  '*.headers.Authorization',
];

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream; secrets?: readonly string[] } = {}): Logger {
  const destination = opts.destination ?? pino.destination(2);
  return pino(
    {
      name: opts.name ?? 'meterline',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.secrets && opts.secrets.length > 0 ? scrubbing(destination, opts.secrets) : destination,
  );
}

/** A destination that replaces each secret (raw, or as escaped inside a JSON string) before writing. */
export function scrubbing(destination: pino.DestinationStream, secrets: readonly string[]): pino.DestinationStream {
  const needles = [...new Set(secrets.filter((s) => s.length >= MIN_SECRET_LENGTH).flatMap((s) => [s, JSON.stringify(s).slice(1, -1), encodeURIComponent(s)]))];
  return { write: (line: string) => destination.write(replaceSecretValues(line, needles)) };
}

/** A logger that drops everything: for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
