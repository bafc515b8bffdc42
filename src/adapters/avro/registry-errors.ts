/**
 * Classifies errors of @kafkajs/confluent-schema-registry. Its HTTP errors carry `status`
 * and the message `<clientId> - <body.message>`; a network failure (refused, reset, timeout)
 * also arrives as `status` 400 (mappersmith reports client-side errors that way), so only the
 * statuses below are taken as answers from a real registry.
 */
export type RegistryErrorKind =
  /** The registry answered 404 with a Confluent error body. */
  | 'not_found'
  /** 409: the schema is incompatible with the subject's history. */
  | 'incompatible'
  /** A permanent client-side or 422 failure: invalid schema, non-Avro schema, config mismatch. */
  | 'rejected'
  /** Anything else: unreachable, 5xx, 401/403, a 404 from something that is not a registry. */
  | 'unavailable';

const PERMANENT_CLIENT_ERRORS = new Set([
  'ConfluentSchemaRegistryArgumentError',
  'ConfluentSchemaRegistryCompatibilityError',
  'ConfluentSchemaRegistryInvalidSchemaError',
]);

export function classifyRegistryError(err: unknown): RegistryErrorKind {
  if (!(err instanceof Error)) return 'unavailable';
  const status = (err as { status?: unknown }).status;
  // Without a JSON `message` the client writes "Error, status 404: <body>" (e.g. a proxy page).
  if (status === 404) return /Error, status 404/.test(err.message) ? 'unavailable' : 'not_found';
  if (status === 409) return 'incompatible';
  if (status === 422) return 'rejected';
  if (status === undefined && PERMANENT_CLIENT_ERRORS.has(err.name)) return 'rejected';
  return 'unavailable';
}
