import path from 'node:path';
import { z } from 'zod';
import { parseFaultSpec, type FaultSpec } from '../dev/faults/fault-spec';
import { stripeRateLimits, type StripeRateLimits } from './stripe-rate-limits';

/**
 * The one place the environment is read. `loadConfig` validates everything at once and
 * throws a ConfigError listing every problem; `redactConfig` is the only way config is printed.
 */
export interface Config {
  readonly dataDir: string;
  readonly logLevel: string;
  /** `auto`: human-readable lines on a terminal, JSON lines otherwise. */
  readonly logFormat: LogFormat;
  readonly kafka: {
    /** Empty: use (or start) the embedded dev broker. */
    readonly brokers: string[];
    readonly clientId: string;
    readonly topic: string;
    readonly dlqTopic: string;
    readonly groupId: string;
    readonly devBrokerPartitions: number;
    /** Consumer group tuning: a dead member is noticed after sessionTimeoutMs. */
    readonly sessionTimeoutMs: number;
    readonly heartbeatIntervalMs: number;
    readonly maxWaitTimeMs: number;
  };
  readonly schemaRegistry: {
    /** Unset: Avro single-object encoding with the schemas in schemas/. */
    readonly url: string | undefined;
    readonly username: string | undefined;
    readonly password: string | undefined;
    readonly subject: string;
  };
  readonly clickhouse: {
    /** Unset: embedded ClickHouse (chdb) with data under `embeddedPath`. */
    readonly url: string | undefined;
    readonly username: string;
    readonly password: string | undefined;
    readonly database: string;
    readonly embeddedPath: string;
  };
  readonly stripe: {
    /** Unset: shadow mode — the push ledger is written, nothing is sent. */
    readonly apiKey: string | undefined;
    readonly webhookSecret: string | undefined;
    readonly mode: 'meter_events' | 'meter_event_stream';
    /** Pushes per second: STRIPE_RATE_LIMIT, or the default for the key's mode (see rateLimits.source). */
    readonly rateLimitPerSecond: number;
    readonly rateLimits: StripeRateLimits;
    /** For tests and proxies: point the client at another host (e.g. a local fake). */
    readonly host: string | undefined;
    readonly port: number | undefined;
    readonly protocol: 'http' | 'https';
    /** Absolute meters report per monthly billing period starting on this day (1 = calendar month). */
    readonly billingAnchorDay: number;
  };
  readonly ingest: {
    readonly metersFile: string;
    /** Dedupe window; Stripe accepts events up to 35 days old, so never less than that. */
    readonly dedupeWindowDays: number;
    readonly maxFutureSkewMs: number;
    /**
     * The in-memory dedupe filter: keys per generation (0: no filter, every key is looked up)
     * and bits per key. Memory is at most 2 × keys × bitsPerKey / 8 bytes.
     */
    readonly dedupeFilter: { readonly keys: number; readonly bitsPerKey: number };
  };
  readonly aggregate: {
    /** Bounded out-of-orderness: a partition's watermark trails its newest event time by this much. */
    readonly outOfOrdernessMs: number;
    /** A partition silent this long stops holding the worker's watermark back. */
    readonly idleTimeoutMs: number;
  };
  readonly http: {
    readonly host: string;
    readonly metricsPort: number;
    /** /health/ready fails when a partition with messages waiting has made no progress this long. */
    readonly readyStallMs: number;
  };
  /** `meterline gateway`: the HTTP API (events in, usage out). */
  readonly gateway: {
    readonly host: string;
    readonly port: number;
    readonly maxBodyBytes: number;
    readonly maxEventsPerRequest: number;
    /** Per API key: requests per second on average, and the burst allowed above it. */
    readonly rateLimitPerSecond: number;
    readonly rateLimitBurst: number;
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    /** How often the API keys are reloaded: a revoked key stops working within about this long. */
    readonly keyRefreshMs: number;
  };
  /** Usage alerts: off without an allotments file. */
  readonly alerts: {
    readonly allotmentsFile: string | undefined;
    readonly topic: string;
    /** Optional signed webhook; the secret is required with the URL. */
    readonly webhookUrl: string | undefined;
    readonly webhookSecret: string | undefined;
  };
  /**
   * Chaos runs only (never set in production): faults injected at the ClickHouse port, and a
   * point of the alert protocol where the worker SIGKILLs itself (once it gets there).
   */
  readonly chaos: { readonly clickhouseFaults: FaultSpec | null; readonly seed: number; readonly alertKillAt: 'after_pending' | 'after_publish' | undefined };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export const MIN_DEDUPE_WINDOW_DAYS = 35;
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
/**
 * A whole number within bounds. Every failure names the bounds (`must be 0–65535`), so the
 * message says what to write instead. Numbers are echoed back: unlike strings, they are never secrets.
 */
const int = (def: number, min: number, max: number, bounds = `${min}–${max}`) =>
  z
    .string()
    .optional()
    .transform((raw, ctx) => {
      const text = raw?.trim();
      if (text === undefined || text === '') return def;
      const n = /^[+-]?\d+$/.test(text) ? Number(text) : NaN;
      if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
      const got = /^[+-]?[\d.eE]{1,20}$/.test(text) ? `, got ${text}` : '';
      ctx.addIssue({ code: 'custom', message: Number.isNaN(n) ? `must be a whole number (${bounds})${got}` : `must be ${bounds}${got}` });
      return z.NEVER;
    });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T, def: T[number]) =>
  z.enum(values, { message: `must be one of ${values.join(', ')}` }).default(def as never);
const url = (schemes: string[]) =>
  optionalString.refine(
    (v) => v === undefined || (URL.canParse(v) && schemes.includes(new URL(v).protocol)),
    { message: `must be a URL (${schemes.join(' or ')})` },
  );
const topicName = (def: string) =>
  z
    .string()
    .default(def)
    .refine((v) => /^[A-Za-z0-9._-]{1,249}$/.test(v), { message: 'must be 1-249 characters of letters, digits, ".", "_" or "-"' });

const EnvSchema = z.object({
  METERLINE_DATA_DIR: z.string().default('.meterline'),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info'),
  LOG_FORMAT: oneOf(LOG_FORMATS, 'auto'),
  KAFKA_BROKERS: optionalString.refine(
    (v) => v === undefined || v.split(',').every((b) => /^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(b.trim())),
    { message: 'must be a comma-separated list of host:port' },
  ),
  KAFKA_CLIENT_ID: z.string().default('meterline'),
  KAFKA_TOPIC: topicName('usage.events'),
  KAFKA_DLQ_TOPIC: topicName('usage.events.dlq'),
  KAFKA_GROUP_ID: z.string().min(1).default('meterline-ingest'),
  DEV_BROKER_PARTITIONS: int(8, 1, 1024),
  KAFKA_SESSION_TIMEOUT_MS: int(30_000, 3_000, 300_000),
  KAFKA_HEARTBEAT_INTERVAL_MS: int(3_000, 100, 60_000),
  KAFKA_MAX_WAIT_MS: int(250, 10, 10_000),
  SCHEMA_REGISTRY_URL: url(['http:', 'https:']),
  SCHEMA_REGISTRY_USERNAME: optionalString,
  SCHEMA_REGISTRY_PASSWORD: optionalString,
  SCHEMA_REGISTRY_SUBJECT: z.string().min(1).default('usage.events-value'),
  CLICKHOUSE_URL: url(['http:', 'https:']),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: optionalString,
  CLICKHOUSE_DATABASE: z
    .string()
    .default('meterline')
    .refine((v) => /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(v), { message: 'must be an identifier (letters, digits, _)' }),
  STRIPE_API_KEY: optionalString.refine((v) => v === undefined || /^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/.test(v), {
    message: 'must look like sk_test_…, sk_live_…, rk_test_… or rk_live_…',
  }),
  STRIPE_WEBHOOK_SECRET: optionalString.refine((v) => v === undefined || v.startsWith('whsec_'), {
    message: 'must start with whsec_',
  }),
  STRIPE_MODE: oneOf(['meter_events', 'meter_event_stream'], 'meter_events'),
  // Unset: derived from the key's mode (test 20/s, live 900/s; see stripe-rate-limits.ts).
  STRIPE_RATE_LIMIT: int(0, 1, 10000).transform((v) => (v === 0 ? undefined : v)),
  STRIPE_HOST: optionalString,
  STRIPE_PORT: int(0, 1, 65535).transform((v) => (v === 0 ? undefined : v)),
  STRIPE_PROTOCOL: oneOf(['http', 'https'], 'https'),
  BILLING_PERIOD_ANCHOR_DAY: int(1, 1, 28),
  METERS_FILE: z.string().default('meters.yaml'),
  DEDUPE_WINDOW_DAYS: int(MIN_DEDUPE_WINDOW_DAYS, MIN_DEDUPE_WINDOW_DAYS, 3650, `at least ${MIN_DEDUPE_WINDOW_DAYS} (Stripe accepts events up to ${MIN_DEDUPE_WINDOW_DAYS} days old) and at most 3650`),
  MAX_FUTURE_SKEW_SECONDS: int(300, 0, 7 * 86400),
  DEDUPE_FILTER_KEYS: int(10_000_000, 0, 1_000_000_000),
  DEDUPE_FILTER_BITS_PER_KEY: int(10, 1, 32),
  WATERMARK_OUT_OF_ORDERNESS_SECONDS: int(5, 0, 86400),
  PARTITION_IDLE_TIMEOUT_SECONDS: int(30, 1, 86400),
  HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  METRICS_PORT: int(9464, 0, 65535),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: int(8080, 0, 65535),
  GATEWAY_MAX_BODY_BYTES: int(5 * 1024 * 1024, 1024, 256 * 1024 * 1024),
  GATEWAY_MAX_EVENTS_PER_REQUEST: int(1000, 1, 100_000),
  GATEWAY_RATE_LIMIT: int(100, 1, 1_000_000),
  GATEWAY_RATE_BURST: int(200, 1, 10_000_000),
  GATEWAY_HEADERS_TIMEOUT_MS: int(10_000, 100, 600_000),
  GATEWAY_REQUEST_TIMEOUT_MS: int(30_000, 100, 3_600_000),
  GATEWAY_KEY_REFRESH_MS: int(1_000, 100, 60_000),
  CHAOS_CLICKHOUSE_FAULTS: optionalString.refine((v) => v === undefined || parseFaultSpec(v).ok, {
    message: 'must look like fail=0.02,fail_after=0.02,slow=0.05,slow_ms=300 (chaos testing only)',
  }),
  CHAOS_SEED: int(1, 0, 2 ** 31 - 1),
  CHAOS_ALERT_KILL_AT: z.enum(['after_pending', 'after_publish'], { message: 'must be after_pending or after_publish (chaos testing only)' }).optional(),
  ALLOTMENTS_FILE: optionalString,
  ALERTS_TOPIC: topicName('usage.alerts'),
  ALERT_WEBHOOK_URL: url(['http:', 'https:']),
  ALERT_WEBHOOK_SECRET: optionalString.refine((v) => v === undefined || v.length >= 16, { message: 'must be at least 16 characters' }),
  READY_STALL_SECONDS: int(60, 1, 86400),
}).superRefine((e, ctx) => {
  // One filter generation indexes its bits with 32-bit hashes.
  if (e.DEDUPE_FILTER_KEYS * e.DEDUPE_FILTER_BITS_PER_KEY > 2 ** 32) {
    ctx.addIssue({ code: 'custom', path: ['DEDUPE_FILTER_KEYS'], message: 'times DEDUPE_FILTER_BITS_PER_KEY must be at most 4294967296 bits (512 MiB per generation)' });
  }
  if (e.ALERT_WEBHOOK_URL && !e.ALERT_WEBHOOK_SECRET) ctx.addIssue({ code: 'custom', path: ['ALERT_WEBHOOK_SECRET'], message: 'must be set with ALERT_WEBHOOK_URL (deliveries are signed)' });
  if (e.ALERT_WEBHOOK_URL && !e.ALLOTMENTS_FILE) ctx.addIssue({ code: 'custom', path: ['ALERT_WEBHOOK_URL'], message: 'must come with ALLOTMENTS_FILE (no allotments, no alerts)' });
});

/** Every variable the project reads, for .env.example and the README table. */
export const ENV_VARIABLES = Object.keys(EnvSchema.shape) as (keyof typeof EnvSchema.shape)[];

export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    // Values are never echoed back: a mistyped secret must not end up in a terminal log.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}${i.message.startsWith('must ') ? ' ' : ': '}${i.message}`));
  }
  const e = parsed.data;
  const dataDir = path.resolve(cwd, e.METERLINE_DATA_DIR);
  const rateLimits = stripeRateLimits(e.STRIPE_API_KEY, e.STRIPE_RATE_LIMIT);
  return {
    dataDir,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    kafka: {
      brokers: e.KAFKA_BROKERS ? e.KAFKA_BROKERS.split(',').map((b) => b.trim()) : [],
      clientId: e.KAFKA_CLIENT_ID,
      topic: e.KAFKA_TOPIC,
      dlqTopic: e.KAFKA_DLQ_TOPIC,
      groupId: e.KAFKA_GROUP_ID,
      devBrokerPartitions: e.DEV_BROKER_PARTITIONS,
      sessionTimeoutMs: e.KAFKA_SESSION_TIMEOUT_MS,
      heartbeatIntervalMs: e.KAFKA_HEARTBEAT_INTERVAL_MS,
      maxWaitTimeMs: e.KAFKA_MAX_WAIT_MS,
    },
    schemaRegistry: {
      url: e.SCHEMA_REGISTRY_URL,
      username: e.SCHEMA_REGISTRY_USERNAME,
      password: e.SCHEMA_REGISTRY_PASSWORD,
      subject: e.SCHEMA_REGISTRY_SUBJECT,
    },
    clickhouse: {
      url: e.CLICKHOUSE_URL,
      username: e.CLICKHOUSE_USER,
      password: e.CLICKHOUSE_PASSWORD,
      database: e.CLICKHOUSE_DATABASE,
      embeddedPath: path.join(dataDir, 'clickhouse'),
    },
    stripe: {
      apiKey: e.STRIPE_API_KEY,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET,
      mode: e.STRIPE_MODE,
      rateLimitPerSecond: rateLimits.pushPerSecond,
      rateLimits,
      host: e.STRIPE_HOST,
      port: e.STRIPE_PORT,
      protocol: e.STRIPE_PROTOCOL,
      billingAnchorDay: e.BILLING_PERIOD_ANCHOR_DAY,
    },
    ingest: {
      metersFile: path.resolve(cwd, e.METERS_FILE),
      dedupeWindowDays: e.DEDUPE_WINDOW_DAYS,
      maxFutureSkewMs: e.MAX_FUTURE_SKEW_SECONDS * 1000,
      dedupeFilter: { keys: e.DEDUPE_FILTER_KEYS, bitsPerKey: e.DEDUPE_FILTER_BITS_PER_KEY },
    },
    aggregate: {
      outOfOrdernessMs: e.WATERMARK_OUT_OF_ORDERNESS_SECONDS * 1000,
      idleTimeoutMs: e.PARTITION_IDLE_TIMEOUT_SECONDS * 1000,
    },
    http: { host: e.HTTP_HOST, metricsPort: e.METRICS_PORT, readyStallMs: e.READY_STALL_SECONDS * 1000 },
    gateway: {
      host: e.GATEWAY_HOST,
      port: e.GATEWAY_PORT,
      maxBodyBytes: e.GATEWAY_MAX_BODY_BYTES,
      maxEventsPerRequest: e.GATEWAY_MAX_EVENTS_PER_REQUEST,
      rateLimitPerSecond: e.GATEWAY_RATE_LIMIT,
      rateLimitBurst: e.GATEWAY_RATE_BURST,
      headersTimeoutMs: e.GATEWAY_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.GATEWAY_REQUEST_TIMEOUT_MS,
      keyRefreshMs: e.GATEWAY_KEY_REFRESH_MS,
    },
    alerts: {
      allotmentsFile: e.ALLOTMENTS_FILE === undefined ? undefined : path.resolve(cwd, e.ALLOTMENTS_FILE),
      topic: e.ALERTS_TOPIC,
      webhookUrl: e.ALERT_WEBHOOK_URL,
      webhookSecret: e.ALERT_WEBHOOK_SECRET,
    },
    chaos: { clickhouseFaults: faultSpecOrNull(e.CHAOS_CLICKHOUSE_FAULTS), seed: e.CHAOS_SEED, alertKillAt: e.CHAOS_ALERT_KILL_AT },
  };
}

function faultSpecOrNull(text: string | undefined): FaultSpec | null {
  if (text === undefined) return null;
  const r = parseFaultSpec(text);
  return r.ok ? r.spec : null;
}

const SECRET = '[redacted]';

/** A printable copy of the config: secrets replaced, credentials stripped from URLs. */
export function redactConfig(config: Config): unknown {
  const stripUserInfo = (u: string | undefined) => {
    if (u === undefined) return undefined;
    const parsed = new URL(u);
    if (parsed.username || parsed.password) {
      parsed.username = SECRET;
      parsed.password = '';
    }
    return parsed.toString();
  };
  return {
    ...config,
    schemaRegistry: {
      ...config.schemaRegistry,
      url: stripUserInfo(config.schemaRegistry.url),
      password: config.schemaRegistry.password && SECRET,
    },
    clickhouse: { ...config.clickhouse, url: stripUserInfo(config.clickhouse.url), password: config.clickhouse.password && SECRET },
    stripe: { ...config.stripe, apiKey: config.stripe.apiKey && SECRET, webhookSecret: config.stripe.webhookSecret && SECRET },
    alerts: { ...config.alerts, webhookUrl: stripUserInfo(config.alerts.webhookUrl), webhookSecret: config.alerts.webhookSecret && SECRET },
  };
}

/** The secret values themselves, for tests and log scrubbing. */
export function secretValues(config: Config): string[] {
  // A password may also ride in a URL's user info (http://user:pass@host).
  const urlPassword = (u: string | undefined) => (u === undefined ? undefined : decodeURIComponent(new URL(u).password) || undefined);
  return [
    config.clickhouse.password,
    config.schemaRegistry.password,
    config.stripe.apiKey,
    config.stripe.webhookSecret,
    config.alerts.webhookSecret,
    urlPassword(config.alerts.webhookUrl),
    urlPassword(config.clickhouse.url),
    urlPassword(config.schemaRegistry.url),
  ].filter((s): s is string => typeof s === 'string' && s.length > 0);
}
