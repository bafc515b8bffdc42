import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stderr (stdout stays for command output such as query results).
 * Any field named like a secret is censored wherever it appears in a log record.
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
];

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      name: opts.name ?? 'meterline',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination(2),
  );
}

/** A logger that drops everything: for library use and tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
