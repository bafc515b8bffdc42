import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { Config } from '../../config/config';
import { createConfluentEncoder, createDecoder, createSingleObjectEncoder, type EventDecoder, type EventEncoder } from './codec';
import { avroTypeOptions } from './schemas';

/** Confluent wire format through the registry when SCHEMA_REGISTRY_URL is set; single-object otherwise. */
export function createRegistry(config: Config): SchemaRegistry | undefined {
  const r = config.schemaRegistry;
  if (!r.url) return undefined;
  // The registry client must parse schemas with our decimal(38, 9) type: without it a decimal
  // of another precision or scale would be read as ours and its values silently rescaled.
  return new SchemaRegistry(
    { host: r.url, ...(r.username ? { auth: { username: r.username, password: r.password ?? '' } } : {}) },
    { forSchemaOptions: avroTypeOptions() },
  );
}

export function createEncoderFromConfig(config: Config): EventEncoder {
  const registry = createRegistry(config);
  return registry ? createConfluentEncoder(registry, config.schemaRegistry.subject) : createSingleObjectEncoder();
}

/** The decoder reads both encodings whatever the config; the registry is only needed for Confluent frames. */
export function createDecoderFromConfig(config: Config): EventDecoder {
  const registry = createRegistry(config);
  return createDecoder(registry ? { registry } : {});
}
