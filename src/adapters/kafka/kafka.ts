import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import type { Config } from '../../config/config';
import path from 'node:path';
import { MeterlineError, errorMessage } from '../../runtime/errors';
import type { Logger } from '../../runtime/logger';
import { DEV_BROKER_STATE_FILE, readBrokerState } from '../../dev/dev-broker/broker';

/**
 * Where Kafka is: KAFKA_BROKERS when set; otherwise the dev broker that `meterline dev-broker`
 * (or `meterline run`) recorded under the data directory. Never guesses a default address.
 */
export function resolveBrokers(config: Config): string[] | undefined {
  if (config.kafka.brokers.length > 0) return config.kafka.brokers;
  const state = readBrokerState(config.dataDir);
  return state?.bootstrapServers;
}

export function requireBrokers(config: Config): string[] {
  const brokers = resolveBrokers(config);
  if (!brokers) {
    throw new MeterlineError(
      'no_kafka',
      'no Kafka to talk to: set KAFKA_BROKERS, or start the development broker with `meterline dev-broker` ' +
        '(or `meterline run`, which starts one) in this directory',
    );
  }
  return brokers;
}

/**
 * The brokers of `requireBrokers`, once one of them answered. Fails within a few seconds, in one
 * line naming the brokers and where they came from, instead of kafkajs' minute of retries.
 */
export async function requireReachableBrokers(config: Config): Promise<string[]> {
  const brokers = requireBrokers(config);
  const probe = new Kafka({ clientId: `${config.kafka.clientId}-probe`, brokers, logLevel: logLevel.NOTHING, connectionTimeout: 2_000, retry: { retries: 2, initialRetryTime: 250, maxRetryTime: 1_000 } });
  const admin = probe.admin();
  try {
    await admin.connect();
  } catch (err) {
    const source = config.kafka.brokers.length > 0 ? 'check KAFKA_BROKERS' : `the development broker recorded in ${path.join(config.dataDir, DEV_BROKER_STATE_FILE)} does not answer: restart \`meterline dev-broker\`, or set KAFKA_BROKERS`;
    throw new MeterlineError('kafka_unreachable', `cannot reach Kafka at ${brokers.join(',')} (${rootCause(err)}): ${source}`, { cause: err });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return brokers;
}

/** The innermost message of a kafkajs error chain (its retrier wraps the connection error). */
function rootCause(err: unknown): string {
  let e = err;
  for (let depth = 0; depth < 5 && e instanceof Error && (e as { cause?: unknown }).cause instanceof Error; depth += 1) e = (e as { cause?: unknown }).cause;
  return errorMessage(e);
}

/** kafkajs with its logs routed into ours (kafkajs logs at warn+ only; it is chatty below). */
export function createKafka(brokers: string[], opts: { clientId: string; logger?: Logger; extra?: Partial<KafkaConfig> }): Kafka {
  const log = opts.logger?.child({ module: 'kafkajs' });
  return new Kafka({
    clientId: opts.clientId,
    brokers,
    logLevel: log ? logLevel.WARN : logLevel.NOTHING,
    logCreator: () => ({ level, log: entry }) => {
      if (!log) return;
      const { message, ...rest } = entry;
      // Known notices, not problems: the partitioner is chosen explicitly in publisher.ts, and
      // idempotent producers here retry a bounded number of times on purpose (a failed send
      // is retried by the caller; ingest dedupes any copy it creates).
      if (typeof message === 'string' && /switched default partitioner|Limiting retries for the idempotent producer/.test(message)) return;
      if (level <= logLevel.ERROR) log.error(rest, message);
      else log.warn(rest, message);
    },
    retry: { initialRetryTime: 100, retries: 8 },
    ...opts.extra,
  });
}

/** kafkajs marks errors it may retry; one that ran out of retries wraps the last of them. */
export function isTransientKafkaError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    if ((e as { retriable?: unknown }).retriable === true) return true;
  }
  return false;
}

const MEMBERSHIP_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR_FOR_GROUP', 'NOT_COORDINATOR']);

/**
 * Whether `err` (or an error it wraps: kafkajs' retrier wraps exhausted or non-retriable errors)
 * means "this member's view of the group is out of date": a commit or heartbeat refused because
 * the group is rebalancing or moved on. The consumer rejoins on its own; the caller must not
 * treat it as a crash.
 */
export function isGroupMembershipError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = (e as { cause?: unknown }).cause, depth += 1) {
    if (MEMBERSHIP_ERRORS.has(String((e as { type?: unknown }).type))) return true;
  }
  return false;
}
