import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { DEFAULT_KAFKA_VERSION } from '../../src/dev/apache-kafka/versions';

// docker-compose.yml is the production-shaped stack: its Kafka must be the version the suites
// prove, keep the topic (the source of truth) across `docker compose down && up`, and be
// reachable from the host as well as from the other services.

type Service = { image?: string; environment?: Record<string, string | number>; volumes?: string[]; ports?: string[] };
const compose = parse(fs.readFileSync(path.resolve(__dirname, '..', '..', 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const kafka = compose.services.kafka!;
const env = kafka.environment!;

describe('docker-compose Kafka', () => {
  it('runs the Apache Kafka version the tests prove, for the broker and its topic set-up alike', () => {
    expect(kafka.image).toBe(`apache/kafka:${DEFAULT_KAFKA_VERSION}`);
    expect(compose.services['kafka-init']!.image).toBe(`apache/kafka:${DEFAULT_KAFKA_VERSION}`);
  });

  it('keeps its log directory on a named volume', () => {
    const logDirs = String(env.KAFKA_LOG_DIRS);
    expect(logDirs.startsWith('/tmp')).toBe(false);
    const mount = (kafka.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === logDirs);
    expect(mount).toBeDefined();
    expect(Object.keys(compose.volumes)).toContain(mount![0]);
  });

  it('advertises a listener the host reaches (localhost:9092) beside the in-network one every service uses', () => {
    const advertised = String(env.KAFKA_ADVERTISED_LISTENERS).split(',');
    expect(advertised).toContain('EXTERNAL://localhost:9092');
    expect(kafka.ports).toContain('9092:9092');
    const internal = advertised.find((l) => l.startsWith('INTERNAL://'))!.replace('INTERNAL://', '');
    expect(compose.services.meterline?.environment?.KAFKA_BROKERS ?? compose.services.worker?.environment?.KAFKA_BROKERS).toBe(internal);
    expect(compose.services['schema-registry']!.environment!.SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS).toBe(internal);
  });
});
