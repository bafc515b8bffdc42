# The worker image for docker-compose.yml (production: set KAFKA_BROKERS and CLICKHOUSE_URL).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm install --no-audit --no-fund && npm prune --omit=dev
COPY bin ./bin
COPY schemas ./schemas
COPY meters.yaml ./
USER node
ENTRYPOINT ["node", "bin/meterline"]
