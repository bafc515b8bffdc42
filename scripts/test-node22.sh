#!/usr/bin/env bash
# The unit tier and a worker smoke run on Node 22 LTS, with Node 22 taken from the npm registry's
# `node` package (npm exec caches it; nothing else is downloaded). The project's own Node (20)
# keeps running everything else. About a minute once the package is cached.
set -euo pipefail
cd "$(dirname "$0")/.."
node22() { npm exec --yes --package=node@22 -- node "$@"; }

echo "test:node22: $(node22 --version)"
node22 node_modules/typescript/bin/tsc -p tsconfig.build.json
node22 node_modules/jest/bin/jest.js --selectProjects unit
node22 scripts/smoke-worker.js
