import { CompressionTypes, Partitioners, type Kafka, type Producer } from 'kafkajs';
import { createEncoderFromConfig } from '../adapters/avro/from-config';
import type { EventEncoder } from '../adapters/avro/codec';
import { createKafka, isTransientKafkaError, requireBrokers } from '../adapters/kafka/kafka';
import { loadConfig, type Config } from '../config/config';
import { validateRecord } from '../domain/ndjson';
import { partitionKey, type UsageEvent } from '../domain/usage-event';
import { MeterlineError, errorMessage } from '../runtime/errors';
import type { Logger } from '../runtime/logger';
import { createBatchingSender, type OutgoingMessage } from './batching-sender';

/** A usage event as an application hands it over; validated exactly like a `meterline publish` line. */
export interface UsageEventInput {
  readonly id: string;
  /** May be left out when the publisher has a `tenant`. */
  readonly tenant?: string;
  readonly customer: string;
  readonly meter: string;
  /** Exact decimal: a string such as "12.345" is best; a number is read as its shortest text. */
  readonly value: string | number;
  /** Epoch milliseconds, ISO-8601 text, or a Date. */
  readonly timestamp: number | string | Date;
  readonly properties?: Readonly<Record<string, string>>;
  readonly source?: string | null;
}

export type PublishOutcome =
  /** Acknowledged by every in-sync replica. */
  | { readonly status: 'published'; readonly event: UsageEvent }
  /** Invalid: never sent. The reason is the one `meterline publish` gives. */
  | { readonly status: 'rejected'; readonly reason: string }
  /** Valid, but Kafka did not take it (after retries of transient errors). Safe to publish again. */
  | { readonly status: 'failed'; readonly reason: string; readonly event: UsageEvent; readonly error: unknown };

export interface PublisherOptions {
  /** Kafka bootstrap servers. Default: KAFKA_BROKERS, or the dev broker of this directory (as the CLI). */
  readonly brokers?: readonly string[];
  /** Default: KAFKA_TOPIC. */
  readonly topic?: string;
  /** Fills a missing tenant; an event naming another tenant is rejected. */
  readonly tenant?: string;
  /** Default: KAFKA_CLIENT_ID + "-publisher". */
  readonly clientId?: string;
  /** The environment read for everything not given here (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  /** Wait at most this long to fill a batch (default 10 ms). */
  readonly lingerMs?: number;
  /** Events per batch (default 1000). */
  readonly maxBatchEvents?: number;
  /** Encoded bytes per batch (default 900 KiB, under Kafka's default 1 MiB request limit). */
  readonly maxBatchBytes?: number;
  /** Events accepted but not yet acknowledged before `publish` waits (default 100,000). */
  readonly maxPendingEvents?: number;
  /** Attempts per batch on transient broker errors (default 5); kafkajs' own retries come first. */
  readonly maxAttempts?: number;
  readonly retryBackoffMs?: number;
  /** Encoder of the event bytes. Default: as the CLI (schema registry when SCHEMA_REGISTRY_URL is set). */
  readonly encoder?: EventEncoder;
  /** Use this kafkajs client instead of creating one from `brokers`. */
  readonly kafka?: Kafka;
  readonly logger?: Logger;
  /** The current time, for the future-skew rule (default Date.now). */
  readonly clock?: () => number;
}

export interface Publisher {
  /** Resolves when the event is acknowledged, rejected or failed; never rejects for a bad event. */
  publish(event: UsageEventInput): Promise<PublishOutcome>;
  /** One outcome per event, in order. */
  publishMany(events: readonly UsageEventInput[]): Promise<PublishOutcome[]>;
  /** Sends what is waiting and resolves when every event published so far has its outcome. */
  flush(): Promise<void>;
  /** Flushes, then disconnects. Publishing afterwards throws. */
  close(): Promise<void>;
}

/**
 * The producer SDK: validates with the rules of `meterline publish`, keys each event by
 * (tenant, id) like the CLI, and batches with a linger and size bounds. Configured from
 * `options`, falling back to the same environment variables as the CLI.
 */
export async function createPublisher(options: PublisherOptions = {}): Promise<Publisher> {
  const env = options.env ?? process.env;
  const config: Config = loadConfig(options.brokers ? { ...env, KAFKA_BROKERS: options.brokers.join(',') } : env);
  const topic = options.topic ?? config.kafka.topic;
  const clock = options.clock ?? Date.now;
  const encoder = options.encoder ?? createEncoderFromConfig(config);
  const kafka = options.kafka ?? createKafka(requireBrokers(config), { clientId: options.clientId ?? `${config.kafka.clientId}-publisher`, logger: options.logger });
  // As the CLI's publisher: idempotent, and the Java client's murmur2 partitioner, so producers
  // in every language keying by (tenant, id) send all copies of an event to one partition.
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const log = options.logger?.child({ module: 'publisher' });

  const sender = createBatchingSender(
    async (messages: readonly OutgoingMessage[]) => {
      await producer.send({ topic, messages: messages.map((m) => ({ key: m.key, value: m.value })), acks: -1, compression: CompressionTypes.None });
    },
    {
      lingerMs: options.lingerMs ?? 10,
      maxBatchMessages: options.maxBatchEvents ?? 1000,
      maxBatchBytes: options.maxBatchBytes ?? 900 * 1024,
      maxPending: options.maxPendingEvents ?? 100_000,
      maxAttempts: options.maxAttempts ?? 5,
      retryBackoffMs: options.retryBackoffMs ?? 200,
      isTransient: isTransientKafkaError,
      onRetry: ({ attempt, delayMs, error }) => log?.warn({ attempt, delayMs, err: errorMessage(error) }, 'publishing a batch failed; retrying'),
    },
  );
  let closed = false;

  const outstanding = new Set<Promise<PublishOutcome>>();
  function publish(input: UsageEventInput): Promise<PublishOutcome> {
    if (closed) return Promise.reject(new MeterlineError('publisher_closed', 'publish() after close()'));
    const p = publishOne(input);
    outstanding.add(p);
    void p.finally(() => outstanding.delete(p));
    return p;
  }

  async function publishOne(input: UsageEventInput): Promise<PublishOutcome> {
    const raw = input !== null && typeof input === 'object' && input.timestamp instanceof Date ? { ...input, timestamp: input.timestamp.getTime() } : input;
    const valid =
      raw !== null && typeof raw === 'object' && !Array.isArray(raw)
        ? validateRecord(raw as unknown as Record<string, unknown>, { now: clock(), maxFutureSkewMs: config.ingest.maxFutureSkewMs, tenant: options.tenant, tenantSetting: 'the publisher tenant' })
        : ({ ok: false, reason: 'event is not an object' } as const);
    if (!valid.ok) return { status: 'rejected', reason: valid.reason };
    const event = valid.event;
    let value: Buffer;
    try {
      value = await encoder.encode(event);
    } catch (err) {
      // A registry that cannot be reached is transient; an event that does not fit the schema is not.
      if (err instanceof MeterlineError && err.retriable) return { status: 'failed', reason: err.message, event, error: err };
      return { status: 'rejected', reason: errorMessage(err) };
    }
    const result = await sender.submit({ key: partitionKey(event), value });
    return result.ok ? { status: 'published', event } : { status: 'failed', reason: result.reason, event, error: result.error };
  }

  return {
    publish,
    publishMany: (events) => Promise.all(events.map(publish)),
    flush: () => sender.flush(),
    async close() {
      if (closed) return;
      closed = true;
      // Events still being encoded reach the sender after this flush: finishing, it sends them
      // at once instead of lingering, and every outstanding publish has its outcome before the
      // producer disconnects.
      await sender.finish();
      await Promise.all(outstanding);
      await producer.disconnect();
    },
  };
}

