import pino from 'pino';
import { prettyFactory } from 'pino-pretty';
import { API_KEY_SHAPE, MIN_SECRET_LENGTH, replaceSecretValues } from './redact';

export type Logger = pino.Logger;
/** `auto`: readable lines when stderr is a terminal, JSON lines otherwise (pipes, files, collectors). */
export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Structured logs on stderr (stdout stays for command output such as query results): JSON
 * lines, or on a terminal one readable line per record (time, level, module, message, fields).
 * Two layers keep secrets out: any field named like a secret is censored wherever it appears in
 * a log record, and the configured secret values themselves (`secrets`) are replaced in every
 * line written — so a secret quoted inside an error message or a URL never reaches the log.
 * Secrets are scrubbed from the JSON line before it is made readable, so both forms are clean;
 * anything shaped like a meterline API key is replaced too, configured or not.
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

export function createLogger(
  opts: { level?: string; name?: string; format?: LogFormat; destination?: pino.DestinationStream; secrets?: readonly string[] } = {},
): Logger {
  const destination = opts.destination ?? pino.destination(2);
  const format = opts.format ?? 'auto';
  // An explicit destination is a pipe or a test's buffer: `auto` means JSON there.
  const pretty = format === 'pretty' || (format === 'auto' && opts.destination === undefined && process.stderr.isTTY === true);
  const readable = pretty ? prettifying(destination, { colorize: opts.destination === undefined && process.stderr.isTTY === true }) : destination;
  return pino(
    {
      name: opts.name ?? 'meterline',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    withoutApiKeys(opts.secrets && opts.secrets.length > 0 ? scrubbing(readable, opts.secrets) : readable),
  );
}

/** A destination that replaces anything shaped like a meterline API key (whoever logged it, however). */
export function withoutApiKeys(destination: pino.DestinationStream): pino.DestinationStream {
  return { write: (line: string) => destination.write(line.includes('mlk_') ? line.replace(API_KEY_SHAPE, '[redacted]') : line) };
}

/**
 * A destination that turns each JSON line into one readable line with pino-pretty, e.g.
 * `07:31:02.114 INFO  ingest: ingest progress {"accepted":1000,"duplicates":98}`.
 */
export function prettifying(destination: pino.DestinationStream, opts: { colorize: boolean }): pino.DestinationStream {
  const prettify = prettyFactory({
    colorize: opts.colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name,module',
    messageFormat: '{if module}{module}: {end}{msg}',
  });
  return { write: (line: string) => destination.write(prettify(line)) };
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
