import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import type { Config } from '../../config/config';
import { MeterlineError } from '../../runtime/errors';
import type { Logger } from '../../runtime/logger';
import { readBrokerState } from './dev-broker';

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
