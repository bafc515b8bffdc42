# The worker image for docker-compose.yml (production: set KAFKA_BROKERS and CLICKHOUSE_URL; the
# embedded ClickHouse engine, chdb, is a development dependency and is not in this image).
# Three stages: `build` compiles dist/ from the sources, `deps` installs the production
# dependencies, and the final image takes only their results: no sources, no TypeScript configs,
# no dev dependencies. test/unit/dockerfile.spec.ts checks these properties.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Dependencies first, from the lock file: this layer is reused until package*.json change.
# --ignore-scripts: the `prepare` script (tsc) needs the sources, copied only below.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Only node_modules leaves this stage (the npm cache stays behind with it).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist ./dist
COPY bin/meterline ./bin/meterline
COPY schemas ./schemas
COPY meters.yaml ./
# The data directory (dev-server state lookups, METERLINE_DATA_DIR) must be writable by the worker.
RUN mkdir -p /app/.meterline && chown node:node /app/.meterline
USER node
ENTRYPOINT ["node", "bin/meterline"]
