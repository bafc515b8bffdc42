import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { MeterlineError } from '../../runtime/errors';
import { projectRoot } from '../../runtime/project-root';

/** Points at a prebuilt broker binary instead of building one. */
export const DEV_BROKER_BIN_ENV = 'METERLINE_DEV_BROKER_BIN';
const STDERR_TAIL_CHARS = 4_000;

let binaryPromise: Promise<string> | undefined;

/**
 * Path of the broker binary, building it first if this source version is not cached yet
 * (40 s on 2 idle cores, more under load; needs gcc, make, zlib1g-dev and the npm registry). The script's
 * own cache check is cheap and concurrency-safe, so it is always the source of truth;
 * the result is memoized per process.
 */
export function ensureDevBrokerBinary(opts: { log?: (msg: string) => void } = {}): Promise<string> {
  const override = process.env[DEV_BROKER_BIN_ENV];
  if (override) return Promise.resolve(override);
  binaryPromise ??= runBuildScript(opts.log).catch((err: unknown) => {
    binaryPromise = undefined; // a failed build may succeed once the environment is fixed
    throw err;
  });
  return binaryPromise;
}

function runBuildScript(log?: (msg: string) => void): Promise<string> {
  const script = path.join(projectRoot(), 'scripts', 'build-dev-broker.sh');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderrTail = (stderrTail + line + '\n').slice(-STDERR_TAIL_CHARS);
      log?.(line);
    });
    child.on('error', (err) =>
      reject(new MeterlineError('DEV_BROKER_BUILD', `cannot run ${script}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) => {
      const binary = stdout.trim().split('\n').pop() ?? '';
      if (code === 0 && binary && existsSync(binary)) resolve(binary);
      else reject(new MeterlineError('DEV_BROKER_BUILD', `${script} failed (exit ${code}):\n${stderrTail}`));
    });
  });
}
