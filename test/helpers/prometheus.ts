import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './wait';

/**
 * Debian's `prometheus` package (promtool + prometheus). Locally a missing install skips the
 * tests that need it, loudly; in CI (`CI` set) it fails them: .ci/run installs the package.
 */
export function hasPromtool(what: string): boolean {
  const found = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('prometheus', ['--version'], { stdio: 'ignore' }).status === 0;
  if (found) return true;
  if (process.env.CI) throw new Error(`promtool/prometheus not found, needed by ${what}: .ci/run installs Debian's prometheus package`);
  process.stderr.write(`\n*** SKIPPING ${what}: promtool/prometheus not installed (apt-get install -y prometheus) ***\n\n`);
  return false;
}

/** Runs `promtool ARGS…` (optionally with stdin) and returns its exit status and output. */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { input, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** A free TCP port on 127.0.0.1 (free when asked; good enough for a test). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface TestPrometheus {
  readonly url: string;
  /** Instant query; resolves with the result vector. */
  query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
  stop(): Promise<void>;
}

/** Our own Prometheus (never the system one): temp config and data dir, a free port, scraping `target` every second. */
export async function startPrometheus(target: string): Promise<TestPrometheus> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-prom-'));
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: meterline\n    static_configs: [{ targets: ["${target}"] }]\n`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    'prometheus',
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      `Prometheus ready on ${url}`,
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${stderr}`);
        return (await fetch(`${url}/-/ready`).catch(() => null))?.ok === true;
      },
      30_000,
      200,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await res.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
      if (body.status !== 'success') throw new Error(`query ${promql} failed: ${body.error}`);
      return body.data.result;
    },
    stop,
  };
}
