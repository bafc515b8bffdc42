#!/usr/bin/env node
'use strict';
// A worker smoke run on whatever Node runs this script (scripts/test-node22.sh runs it on Node 22):
// `meterline run` on embedded defaults (dev broker, embedded ClickHouse, Stripe shadow mode, demo
// events) in a fresh data directory, until its metrics show accepted events and its readiness
// passes; then SIGTERM, and it must exit 0. Prints one line of results; exits 1 on any failure.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const ROOT = path.resolve(__dirname, '..');
const TIMEOUT_MS = 180_000;

async function main() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-smoke-'));
  const started = Date.now();
  const worker = spawn(process.execPath, [path.join(ROOT, 'bin', 'meterline'), 'run'], {
    cwd: ROOT,
    env: { ...process.env, METERLINE_DATA_DIR: dataDir, METRICS_PORT: '0', LOG_FORMAT: 'json', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const exited = new Promise((resolve) => worker.on('exit', (code, signal) => resolve({ code, signal })));
  let metricsUrl;
  const tail = [];
  readline.createInterface({ input: worker.stderr }).on('line', (line) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    try {
      const record = JSON.parse(line);
      if (record.msg === 'metrics endpoint listening') metricsUrl = record.url.replace(/\/metrics$/, '');
    } catch {
      // not JSON: kept in the tail for the failure report
    }
  });
  try {
    const accepted = await waitFor(async () => {
      if (worker.exitCode !== null) throw new Error(`the worker exited early (${worker.exitCode})`);
      if (!metricsUrl) return undefined;
      const [metrics, ready] = await Promise.all([fetch(`${metricsUrl}/metrics`).then((r) => r.text()), fetch(`${metricsUrl}/health/ready`)]);
      const n = [...metrics.matchAll(/^meterline_events_accepted_total\{[^}]*\} (\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
      return n > 0 && ready.status === 200 ? n : undefined;
    });
    worker.kill('SIGTERM');
    const end = await Promise.race([exited, sleep(30_000, { unref: true }).then(() => ({ code: 'timeout' }))]);
    if (end.code !== 0) throw new Error(`the worker did not exit 0 after SIGTERM: ${JSON.stringify(end)}`);
    console.log(`smoke ok on Node ${process.version}: ${accepted} events accepted, ready, clean shutdown, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (err) {
    worker.kill('SIGKILL');
    console.error(`smoke FAILED on Node ${process.version}: ${err.message}\n--- worker stderr (last lines) ---\n${tail.join('\n')}`);
    process.exitCode = 1;
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

async function waitFor(probe) {
  const deadline = Date.now() + TIMEOUT_MS;
  for (;;) {
    const value = await probe().catch((err) => {
      if (/exited early/.test(err.message)) throw err;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`no accepted events and readiness within ${TIMEOUT_MS / 1000} s`);
    await sleep(500);
  }
}

const sleep = (ms, opts = {}) =>
  new Promise((r) => {
    const timer = setTimeout(r, ms);
    if (opts.unref) timer.unref();
  });

main();
