import { Kafka, logLevel } from 'kafkajs';
import { startDevBroker, type DevBroker, type DevBrokerTopic } from '../../src/adapters/kafka/dev-broker';

/**
 * Starts a dev broker (building it on first use, 45-100 s) for one test file. Pair with
 * `await broker.stop()` in afterAll; give the beforeAll hook BROKER_BUILD_TIMEOUT_MS.
 * DEV_BROKER_DEBUG=1 echoes the broker's stderr.
 */
export function startTestBroker(topics: DevBrokerTopic[], opts: { brokers?: number } = {}): Promise<DevBroker> {
  const debug = Boolean(process.env.DEV_BROKER_DEBUG);
  // Build progress always shows, so a first run's long pause explains itself.
  const log = (m: string) => {
    if (debug || m.startsWith('build-dev-broker:')) process.stderr.write(`${m}\n`);
  };
  return startDevBroker({ topics, brokers: opts.brokers, log });
}

/** Generous enough for hook timeouts when the broker binary must be built first. */
export const BROKER_BUILD_TIMEOUT_MS = 300_000;

/**
 * A kafkajs client for `broker`: silent, and failing fast. Retries stay short (≈2 s total)
 * so a test that breaks shows up as a quick failure rather than a timeout, while injected
 * transient errors (push_errors) are still retried through.
 */
export function kafkaFor(broker: DevBroker, clientId = 'meterline-test'): Kafka {
  return new Kafka({
    clientId,
    brokers: broker.bootstrapServers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 5_000,
    retry: { initialRetryTime: 50, maxRetryTime: 500, retries: 5, factor: 0.2, multiplier: 2 },
  });
}

/** Consumer settings that keep group joins and disconnects fast against the dev broker. */
export const TEST_CONSUMER_TIMINGS = { sessionTimeout: 6_000, heartbeatInterval: 500, maxWaitTimeInMs: 100 } as const;
