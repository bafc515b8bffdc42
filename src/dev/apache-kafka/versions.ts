/**
 * Apache Kafka versions this project tests against, fetched from Maven Central
 * (`org.apache.kafka:kafka_2.13`). The first is the default for tests, the benchmark and
 * `meterline dev-broker --kafka`; `npm run test:kafka-versions` runs the version checks on each.
 */
export const TESTED_KAFKA_VERSIONS = ['4.4.0', '3.9.1'] as const;
export const DEFAULT_KAFKA_VERSION: string = TESTED_KAFKA_VERSIONS[0];

/** The broker version to use: KAFKA_VERSION when set, otherwise the default. */
export function kafkaVersionFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const v = env.KAFKA_VERSION?.trim();
  if (!v) return DEFAULT_KAFKA_VERSION;
  if (!/^\d+\.\d+\.\d+$/.test(v)) throw new Error(`KAFKA_VERSION must look like 4.4.0 (got ${JSON.stringify(v)})`);
  return v;
}
