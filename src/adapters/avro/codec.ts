import { SchemaType, type SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import type { UsageEvent } from '../../domain/usage-event';
import { MeterlineError, errorMessage } from '../../runtime/errors';
import { classifyRegistryError } from './registry-errors';
import { usageEventSchemas, type SchemaVersion } from './schemas';

export { createDecoder, type DecoderOptions } from './decoder';

export type { Decoded, DecodeFailureCode, Encoding, EventDecoder } from '../../ports/event-decoder';
import type { Encoding } from '../../ports/event-decoder';

export interface EventEncoder {
  readonly encoding: Encoding;
  encode(event: UsageEvent): Promise<Buffer>;
}

export const DEFAULT_SUBJECT = 'usage.events-value';

/** Avro spec single-object encoding: C3 01, 8-byte little-endian CRC-64-AVRO, Avro binary. */
export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
export const SINGLE_OBJECT_HEADER_LENGTH = 10;
/** Confluent wire format: 00, 4-byte big-endian schema id, Avro binary. */
export const CONFLUENT_MAGIC = 0x00;
export const CONFLUENT_HEADER_LENGTH = 5;

export function createSingleObjectEncoder(): EventEncoder {
  const { latest } = usageEventSchemas();
  const header = Buffer.concat([SINGLE_OBJECT_MAGIC, latest.fingerprintLE]);
  return {
    encoding: 'single-object',
    encode: async (event) => Buffer.concat([header, encodeBody(latest, event)]),
  };
}

/** Registers the latest schema under `subject` on first use (again after a failed attempt). */
export function createConfluentEncoder(registry: SchemaRegistry, subject: string = DEFAULT_SUBJECT): EventEncoder {
  const { latest } = usageEventSchemas();
  let registered: Promise<number> | undefined;
  const schemaId = (): Promise<number> => {
    registered ??= registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(latest.raw) }, { subject }).then(
      (r) => r.id,
      (err: unknown) => {
        registered = undefined;
        throw registrationError(err, subject, latest.version);
      },
    );
    return registered;
  };
  return {
    encoding: 'confluent',
    encode: async (event) => {
      const id = await schemaId();
      const body = encodeBody(latest, event);
      const out = Buffer.allocUnsafe(CONFLUENT_HEADER_LENGTH + body.length);
      out[0] = CONFLUENT_MAGIC;
      out.writeInt32BE(id, 1);
      body.copy(out, CONFLUENT_HEADER_LENGTH);
      return out;
    },
  };
}

function encodeBody(schema: SchemaVersion, event: UsageEvent): Buffer {
  const record = {
    id: event.id,
    tenant: event.tenant,
    customer: event.customer,
    meter: event.meter,
    value: event.value,
    timestamp: event.timestamp,
    properties: event.properties,
    source: event.source,
  };
  try {
    return schema.type.toBuffer(record);
  } catch (err) {
    const paths: string[] = [];
    schema.type.isValid(record, { errorHook: (p: string[]) => paths.push(p.join('.')) });
    const where = paths.length > 0 ? ` (invalid: ${paths.join(', ')})` : '';
    throw new MeterlineError('avro_encode_failed', `event ${event.id} does not fit schema v${schema.version}${where}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

function registrationError(err: unknown, subject: string, version: number): MeterlineError {
  const what = `registering schema v${version} under subject ${subject}`;
  switch (classifyRegistryError(err)) {
    case 'incompatible':
      return new MeterlineError('schema_incompatible', `${what}: the registry rejected it as incompatible: ${errorMessage(err)}`, { cause: err });
    case 'rejected':
      return new MeterlineError('schema_rejected', `${what}: ${errorMessage(err)}`, { cause: err });
    default:
      return new MeterlineError('registry_unavailable', `${what}: ${errorMessage(err)}`, { retriable: true, cause: err });
  }
}
