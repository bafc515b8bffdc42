/**
 * meterline as a library: the same functions the CLI uses.
 *   import { createPublisher } from 'meterline';
 *   const publisher = await createPublisher();   // KAFKA_BROKERS etc., as the CLI
 *   const outcome = await publisher.publish({ id, tenant, customer, meter, value: '1.5', timestamp: Date.now() });
 */
export { loadConfig, redactConfig, ConfigError, type Config } from './config/config';
export { validateEvent, partitionKey, type UsageEvent } from './domain/usage-event';
export { parseDecimal, formatDecimal } from './domain/decimal';
export { parseMeterCatalog, type MeterDefinition, type MeterCatalog } from './domain/meters';
export { generateEvents, toNdjsonLine } from './domain/sample';
export { createKafka, isTransientKafkaError, resolveBrokers } from './adapters/kafka/kafka';
export {
  createPublisher,
  type Publisher,
  type PublisherOptions,
  type PublishOutcome,
  type UsageEventInput,
} from './sdk/create-publisher';
/** The CLI's low-level publisher (a kafkajs client, a topic and an encoder; throws on failure). */
export { createPublisher as createKafkaPublisher, type Publisher as KafkaPublisher } from './adapters/kafka/publisher';
export { startDevBroker, DEV_BROKER_WARNING, type DevBroker } from './dev/dev-broker/broker';
export { createSingleObjectEncoder, createConfluentEncoder, createDecoder, type EventEncoder, type EventDecoder } from './adapters/avro/codec';
export { createEncoderFromConfig, createDecoderFromConfig } from './adapters/avro/from-config';
export { createClickHouse } from './adapters/clickhouse/client';
export { migrate } from './adapters/clickhouse/migrations';
export { createLedgerStore } from './adapters/clickhouse/ledger-store';
export { loadMeterCatalog } from './adapters/meters-file';
export { publishNdjson, type PublishSummary } from './pipeline/publish-ndjson';
export { ingestBatch, type IngestDeps, type BatchOutcome } from './pipeline/ingest-batch';
export { startIngestWorker, type IngestWorker } from './pipeline/ingest-worker';
export { redriveDeadLetters } from './pipeline/redrive';
export { createMetrics, type Metrics } from './runtime/metrics';
export { createLogger, type Logger } from './runtime/logger';
export { MeterlineError } from './runtime/errors';
