import fs from 'node:fs';
import type { Command } from 'commander';
import { DEV_BROKER_WARNING, clearBrokerState, readBrokerState, startDevBroker, writeBrokerState } from '../../dev/dev-broker/broker';
import type { Config } from '../../config/config';
import type { Logger } from '../../runtime/logger';
import { startApacheKafka } from '../../dev/apache-kafka/broker';
import { DEFAULT_KAFKA_VERSION, TESTED_KAFKA_VERSIONS } from '../../dev/apache-kafka/versions';
import { createContext, waitForShutdownSignal } from '../context';
import { withExamples } from '../help';

export function registerDevBroker(program: Command): void {
  const command = program
    .command('dev-broker')
    .description('run a development Kafka broker (NOT for production) until interrupted: the in-memory mock, or with --kafka a real Apache Kafka')
    .option('--kafka', 'run Apache Kafka itself (KRaft, one node, fetched from Maven Central on first use; needs java and mvn)')
    .option('--kafka-version <version>', `Apache Kafka version, with --kafka (tested: ${TESTED_KAFKA_VERSIONS.join(', ')})`, DEFAULT_KAFKA_VERSION)
    .option('--log-dir <dir>', 'with --kafka: keep the broker\'s data here across restarts (default: a temporary directory)')
    .action(async (opts: { kafka?: boolean; kafkaVersion: string; logDir?: string }) => {
      const { config, logger } = createContext();
      const existing = readBrokerState(config.dataDir);
      if (existing) {
        throw new Error(`a dev broker is already running (pid ${existing.pid}) at ${existing.bootstrapServers.join(',')}`);
      }
      const handle = opts.kafka ? await startApacheKafkaBroker(config, logger, opts.kafkaVersion, opts.logDir) : await startEmbeddedBroker(config, logger);
      process.stdout.write(`${handle.bootstrapServers.join(',')}\n`);
      await waitForShutdownSignal();
      await handle.stop();
    });
  withExamples(command, [
    ['terminal 1: a broker for local development (prints its address)', 'meterline dev-broker'],
    ['terminal 2: commands in the same directory find it', 'meterline sample -n 100 | meterline publish'],
    ['Apache Kafka itself (fetched from Maven Central on first use), its data kept across restarts', 'meterline dev-broker --kafka --log-dir .meterline/kafka'],
  ]);
}

/**
 * Starts the dev broker with the project's topics and records its address under the data
 * directory, where every other command finds it when KAFKA_BROKERS is unset.
 */
export async function startEmbeddedBroker(config: Config, logger: Logger): Promise<{ bootstrapServers: string[]; stop(): Promise<void> }> {
  const broker = await startDevBroker({
    topics: [
      { name: config.kafka.topic, partitions: config.kafka.devBrokerPartitions },
      { name: config.kafka.dlqTopic, partitions: config.kafka.devBrokerPartitions },
      { name: config.alerts.topic, partitions: 1 },
    ],
    log: (m) => (m.startsWith(DEV_BROKER_WARNING) ? logger.warn({ module: 'dev-broker' }, m) : logger.info({ module: 'dev-broker' }, m)),
  });
  fs.mkdirSync(config.dataDir, { recursive: true });
  writeBrokerState(config.dataDir, { bootstrapServers: broker.bootstrapServers, pid: broker.pid, startedAt: new Date().toISOString() });
  logger.info({ bootstrapServers: broker.bootstrapServers }, 'dev broker started');
  return {
    bootstrapServers: broker.bootstrapServers,
    async stop() {
      clearBrokerState(config.dataDir);
      await broker.stop();
    },
  };
}

/**
 * Starts Apache Kafka with the project's topics and records it like the dev broker, so `meterline
 * run`, `publish`, `replay` … in this directory find it without KAFKA_BROKERS.
 */
async function startApacheKafkaBroker(config: Config, logger: Logger, version: string, logDir?: string): Promise<{ bootstrapServers: string[]; stop(): Promise<void> }> {
  const log = logger.child({ module: 'apache-kafka' });
  const broker = await startApacheKafka({
    version,
    logDir,
    topics: [
      { name: config.kafka.topic, partitions: config.kafka.devBrokerPartitions },
      { name: config.kafka.dlqTopic, partitions: config.kafka.devBrokerPartitions },
      { name: config.alerts.topic, partitions: 1 },
    ],
    log: (m) => log.info(m),
  });
  fs.mkdirSync(config.dataDir, { recursive: true });
  writeBrokerState(config.dataDir, { bootstrapServers: broker.bootstrapServers, pid: broker.pid() ?? process.pid, startedAt: new Date().toISOString() });
  log.warn({ bootstrapServers: broker.bootstrapServers, version, logDir: broker.logDir }, 'Apache Kafka started for development: one node, no authentication, NOT FOR PRODUCTION');
  return {
    bootstrapServers: broker.bootstrapServers,
    async stop() {
      clearBrokerState(config.dataDir);
      await broker.stop();
    },
  };
}
