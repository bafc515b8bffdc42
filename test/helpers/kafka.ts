import { Kafka, logLevel } from 'kafkajs';
import { startDevBroker, type DevBrokerTopic } from '../../src/dev/dev-broker/broker';
import { startApacheKafka, type ApacheKafka } from '../../src/dev/apache-kafka/broker';
import { kafkaVersionFromEnv } from '../../src/dev/apache-kafka/versions';

/**
 * Which broker a suite runs on:
 * - 'kafka': a real Apache Kafka (KRaft, one node) from Maven Central. Every suite that makes a
 *   delivery claim (ingest, crash, scale-out, replay/backfill, DLQ and redrive, publish,
 *   push-crash, chaos, broker crash) runs here.
 * - 'dev': librdkafka's in-memory mock, the broker of `npm start`: instant, and able to inject
 *   protocol errors. Suites about the rest (query, health, metrics, security, hostile input) run here.
 * TEST_BROKER=dev|kafka runs every suite on one kind (a quick local run, or a full real-broker run).
 */
export type BrokerKind = 'dev' | 'kafka';

export interface TestBroker {
  readonly kind: BrokerKind;
  readonly bootstrapServers: string[];
  createTopic(name: string, partitions: number): Promise<void>;
  /** Dev broker only: a mock_cluster.c command (fault injection). */
  command(line: string): Promise<string>;
  /** Apache Kafka only: the broker itself (kill -9, restart). */
  readonly apache?: ApacheKafka;
  stop(): Promise<void>;
}

function chosenKind(requested: BrokerKind): BrokerKind {
  const forced = process.env.TEST_BROKER;
  if (forced === 'dev' || forced === 'kafka') return forced;
  if (forced) throw new Error(`TEST_BROKER must be dev or kafka (got ${forced})`);
  return requested;
}

/**
 * Starts a broker for one test file (the dev broker is built on first use, 45-100 s; Apache Kafka
 * is fetched on first use, ~15 s, and starts in ~5-10 s). Pair with `await broker.stop()` in
 * afterAll; give the beforeAll hook BROKER_BUILD_TIMEOUT_MS. DEV_BROKER_DEBUG=1 echoes broker logs.
 */
export async function startTestBroker(topics: DevBrokerTopic[], opts: { brokers?: number; kind?: BrokerKind } = {}): Promise<TestBroker> {
  const debug = Boolean(process.env.DEV_BROKER_DEBUG);
  // Build and fetch progress always shows, so a first run's long pause explains itself.
  const log = (m: string) => {
    if (debug || m.startsWith('build-dev-broker:') || m.startsWith('apache-kafka:')) process.stderr.write(`${m}\n`);
  };
  const kind = chosenKind(opts.kind ?? 'dev');
  if (kind === 'kafka') {
    const apache = await startApacheKafka({ version: kafkaVersionFromEnv(), topics, log });
    return {
      kind,
      bootstrapServers: apache.bootstrapServers,
      createTopic: (name, partitions) => apache.createTopic(name, partitions),
      command: () => Promise.reject(new Error('fault injection by command needs the dev broker')),
      apache,
      stop: () => apache.stop(),
    };
  }
  const dev = await startDevBroker({ topics, brokers: opts.brokers, log });
  return { kind, bootstrapServers: dev.bootstrapServers, createTopic: (n, p) => dev.createTopic(n, p), command: (l) => dev.command(l), stop: () => dev.stop() };
}

/** Generous enough for hook timeouts when the broker binary must be built (or Kafka fetched) first. */
export const BROKER_BUILD_TIMEOUT_MS = 300_000;

/**
 * A kafkajs client for `broker`: silent, and failing fast. Retries stay short (≈2 s total)
 * so a test that breaks shows up as a quick failure rather than a timeout, while injected
 * transient errors (push_errors) are still retried through.
 */
export function kafkaFor(broker: { bootstrapServers: string[] }, clientId = 'meterline-test'): Kafka {
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
