#!/usr/bin/env bash
# Runs the kafkajs protocol checks (test/integration/apache-kafka.spec.ts) on every tested Apache
# Kafka version (src/dev/apache-kafka/versions.ts). Each version is fetched once into .cache/kafka.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=$(node -e "require('./dist/dev/apache-kafka/versions.js').TESTED_KAFKA_VERSIONS.forEach((v) => console.log(v))")
for v in $versions; do
  echo "== Apache Kafka $v" >&2
  KAFKA_VERSION="$v" npx jest test/integration/apache-kafka.spec.ts --selectProjects integration --runInBand
done
