import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { MeterlineError, errorMessage } from '../../runtime/errors';

/**
 * Development Kafka broker: librdkafka's in-memory mock cluster, built from source by
 * scripts/build-dev-broker.sh and driven over stdin/stdout (see native/dev-broker/mock_cluster.c).
 */
export const DEV_BROKER_WARNING =
  'meterline dev broker: NOT FOR PRODUCTION. In-memory librdkafka mock cluster for development and tests only: ' +
  'no durability, no authentication, partial Kafka protocol (no admin topic APIs, no real transactions).';

/** State file (in a data directory) recording a running broker for other processes to find. */
export const DEV_BROKER_STATE_FILE = 'dev-broker.json';

/** Set to an executable path to use a prebuilt broker instead of building one. */
export const DEV_BROKER_BIN_ENV = 'METERLINE_DEV_BROKER_BIN';

export interface DevBrokerTopic {
  name: string;
  partitions: number;
}

export interface DevBroker {
  readonly bootstrapServers: string[];
  readonly pid: number;
  /** Creates a topic on the broker (the mock rejects the Kafka CreateTopics API). */
  createTopic(name: string, partitions: number): Promise<void>;
  /**
   * Sends one command line (see mock_cluster.c, e.g. `push_errors 0 2 NOT_LEADER_FOR_PARTITION`).
   * Resolves with the reply line ("OK" or "OK <data>"); rejects with a MeterlineError on "ERR ...".
   */
  command(line: string): Promise<string>;
  /** SIGTERM, then waits for exit (SIGKILL after a grace period). Idempotent. */
  stop(): Promise<void>;
}

export interface DevBrokerState {
  bootstrapServers: string[];
  pid: number;
  startedAt: string;
}

const START_TIMEOUT_MS = 15_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
/** Kafka's legal topic names. */
const TOPIC_NAME = /^(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}$/;

/** Directory holding package.json, found from this file in src/ (jest) or dist/ (compiled). */
export function projectRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new MeterlineError('DEV_BROKER_ROOT', `no package.json above ${from}`);
    dir = parent;
  }
}

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

/** Command-line arguments of the broker binary. */
export function devBrokerArgs(opts: { topics: DevBrokerTopic[]; brokers?: number; detached?: boolean }): string[] {
  const args = ['--brokers', String(opts.brokers ?? 1)];
  for (const t of opts.topics) {
    assertTopic(t.name, t.partitions);
    args.push('--topic', `${t.name}:${t.partitions}`);
  }
  if (opts.detached) args.push('--no-stdin');
  return args;
}

function assertTopic(name: string, partitions: number): void {
  if (!TOPIC_NAME.test(name)) throw new MeterlineError('DEV_BROKER_TOPIC', `invalid topic name: ${JSON.stringify(name)}`);
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new MeterlineError('DEV_BROKER_TOPIC', `invalid partition count for ${name}: ${partitions}`);
  }
}

/** Servers from the broker's first stdout line, "BOOTSTRAP host:port[,host:port...]". */
function parseBootstrap(line: string): string[] | undefined {
  const m = /^BOOTSTRAP (\S+)$/.exec(line.trim());
  return m?.[1] ? m[1].split(',') : undefined;
}

/**
 * Starts a broker as a child process tied to this one: it exits when our end of its stdin
 * closes, so it cannot outlive this process. Call `stop()` when done (an open child keeps
 * the event loop alive).
 */
export async function startDevBroker(opts: {
  topics: DevBrokerTopic[];
  brokers?: number;
  log?: (m: string) => void;
}): Promise<DevBroker> {
  const args = devBrokerArgs(opts);
  const binary = await ensureDevBrokerBinary({ log: opts.log });
  // Its own process group: a terminal's Ctrl-C reaches only our process, which then drains
  // its consumers before stopping the broker. It still exits when our stdin pipe closes,
  // so a killed parent never leaves it behind.
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  return new ChildDevBroker(child, binary, opts.log).started();
}

type Waiter = { resolve: (line: string) => void; reject: (err: Error) => void };

class ChildDevBroker implements DevBroker {
  bootstrapServers: string[] = [];
  readonly pid: number;
  private stderrTail = '';
  /** Resolvers for stdout lines, oldest first; the first line is BOOTSTRAP, then one reply per command. */
  private readonly waiters: Waiter[] = [];
  /** Tail of the command chain: commands run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Set once the process has exited or the line protocol can no longer be trusted. */
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    private readonly binary: string,
    private readonly log?: (m: string) => void,
  ) {
    this.pid = child.pid ?? -1;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(line);
      else this.log?.(`dev-broker: unexpected output: ${line}`);
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.stderrTail = (this.stderrTail + line + '\n').slice(-STDERR_TAIL_CHARS);
      this.log?.(`dev-broker: ${line}`);
    });
    // Writes after the child died fail with EPIPE; that surfaces through `failure` instead.
    child.stdin!.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.fail(new MeterlineError('DEV_BROKER_SPAWN', `cannot start ${this.binary}: ${err.message}`, { cause: err }));
        resolve();
      });
      // 'close' rather than 'exit': stdout/stderr are drained by then, so stderrHint is complete.
      child.on('close', (code, signal) => {
        this.fail(new MeterlineError('DEV_BROKER_EXITED', `dev broker exited (code ${code}, signal ${signal})${this.stderrHint()}`));
        resolve();
      });
    });
  }

  async started(): Promise<this> {
    let line: string;
    try {
      line = await this.nextLine(START_TIMEOUT_MS, 'BOOTSTRAP line');
    } catch (err) {
      await this.stop();
      throw err;
    }
    const servers = parseBootstrap(line);
    if (!servers) {
      await this.stop();
      throw new MeterlineError('DEV_BROKER_START', `expected "BOOTSTRAP host:port,...", got ${JSON.stringify(line)}${this.stderrHint()}`);
    }
    this.bootstrapServers = servers;
    this.log?.(`${DEV_BROKER_WARNING} pid ${this.pid}, bootstrap ${servers.join(',')}`);
    return this;
  }

  async createTopic(name: string, partitions: number): Promise<void> {
    assertTopic(name, partitions);
    await this.command(`topic ${name} ${partitions}`);
  }

  command(line: string): Promise<string> {
    if (/[\r\n]/.test(line)) {
      return Promise.reject(new MeterlineError('DEV_BROKER_COMMAND', 'a command must be a single line'));
    }
    const run = async (): Promise<string> => {
      if (this.failure) throw this.failure;
      const reply = this.nextLine(COMMAND_TIMEOUT_MS, `reply to "${line}"`);
      this.child.stdin!.write(`${line}\n`);
      const text = await reply;
      if (text === 'OK' || text.startsWith('OK ')) return text;
      throw new MeterlineError('DEV_BROKER_COMMAND', `dev broker rejected "${line}": ${text.replace(/^ERR /, '')}`);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    // Release our pipe ends so no handle keeps the event loop (or jest) alive.
    this.child.stdin?.destroy();
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
  }

  /** Next stdout line; on timeout the protocol is out of step, so the broker is marked failed. */
  private nextLine(timeoutMs: number, what: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new MeterlineError('DEV_BROKER_TIMEOUT', `no ${what} from dev broker within ${timeoutMs} ms${this.stderrHint()}`));
      }, timeoutMs);
      this.waiters.push({
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.failure);
  }

  private stderrHint(): string {
    const tail = this.stderrTail.trim();
    return tail ? `\nstderr:\n${tail}` : '';
  }
}

// --- State file and detached mode (`meterline dev-broker`) ----------------------------------
// State helpers are synchronous: they touch one small file and are called from CLI startup code.

/** Writes `dev-broker.json` in `dir` (created if missing) atomically. */
export function writeBrokerState(dir: string, state: DevBrokerState): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, DEV_BROKER_STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

/** The recorded broker, or null if there is no state file or its process is gone. */
export function readBrokerState(dir: string): DevBrokerState | null {
  let raw: string;
  try {
    raw = readFileSync(path.join(dir, DEV_BROKER_STATE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let state: DevBrokerState;
  try {
    state = JSON.parse(raw) as DevBrokerState;
  } catch (err) {
    throw new MeterlineError('DEV_BROKER_STATE', `corrupt ${DEV_BROKER_STATE_FILE} in ${dir}: ${errorMessage(err)}`);
  }
  if (!Number.isInteger(state.pid) || !Array.isArray(state.bootstrapServers)) {
    throw new MeterlineError('DEV_BROKER_STATE', `malformed ${DEV_BROKER_STATE_FILE} in ${dir}`);
  }
  return isAlive(state.pid) ? state : null;
}

/** Removes the state file if present. */
export function clearBrokerState(dir: string): void {
  rmSync(path.join(dir, DEV_BROKER_STATE_FILE), { force: true });
}

/**
 * Whether `pid` is a running dev broker. On Linux /proc also rules out a recycled pid and a
 * zombie (whose cmdline is empty); elsewhere any live process with that pid counts.
 */
function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (existsSync('/proc/self/cmdline')) {
    try {
      const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
      return path.basename(argv0) === 'meterline-dev-broker';
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Starts a broker that outlives this process (`--no-stdin`, own process group), records it
 * with writeBrokerState in `stateDir` and sends its logs to `dev-broker.log` there.
 * Stop it with stopDetachedDevBroker.
 */
export async function startDetachedDevBroker(opts: {
  stateDir: string;
  topics: DevBrokerTopic[];
  brokers?: number;
  log?: (m: string) => void;
}): Promise<DevBrokerState> {
  const args = devBrokerArgs({ ...opts, detached: true });
  const binary = await ensureDevBrokerBinary({ log: opts.log });
  mkdirSync(opts.stateDir, { recursive: true });
  const logFile = path.join(opts.stateDir, 'dev-broker.log');
  const logFd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { stdio: ['ignore', 'pipe', logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  const servers = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new MeterlineError('DEV_BROKER_TIMEOUT', `no BOOTSTRAP line within ${START_TIMEOUT_MS} ms; see ${logFile}`));
    }, START_TIMEOUT_MS);
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      clearTimeout(timer);
      lines.close();
      const parsed = parseBootstrap(line);
      if (parsed) resolve(parsed);
      else {
        child.kill('SIGTERM');
        reject(new MeterlineError('DEV_BROKER_START', `unexpected first line ${JSON.stringify(line)}; see ${logFile}`));
      }
    });
    child.once('error', (err) => (clearTimeout(timer), reject(err)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new MeterlineError('DEV_BROKER_EXITED', `dev broker exited with code ${code}; see ${logFile}`));
    });
  });
  child.removeAllListeners('exit');
  child.stdout!.destroy(); // the broker writes nothing more to stdout in --no-stdin mode
  child.unref();
  const state: DevBrokerState = { bootstrapServers: servers, pid: child.pid!, startedAt: new Date().toISOString() };
  writeBrokerState(opts.stateDir, state);
  opts.log?.(`${DEV_BROKER_WARNING} pid ${state.pid}, bootstrap ${servers.join(',')}`);
  return state;
}

/** Stops the broker recorded in `stateDir` (if alive) and removes its state file. Returns whether one was running. */
export async function stopDetachedDevBroker(stateDir: string): Promise<boolean> {
  const state = readBrokerState(stateDir);
  if (state) {
    signal(state.pid, 'SIGTERM');
    const deadline = Date.now() + STOP_GRACE_MS;
    while (isAlive(state.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (isAlive(state.pid)) signal(state.pid, 'SIGKILL');
  }
  clearBrokerState(stateDir);
  return state !== null;
}

/** process.kill that tolerates the process having exited already. */
function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
