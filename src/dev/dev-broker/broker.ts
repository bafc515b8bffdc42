import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { MeterlineError } from '../../runtime/errors';
import { ensureDevBrokerBinary } from './build';
import { clearBrokerState, isAlive, readBrokerState, signal, writeBrokerState, type DevBrokerState } from './state';

// The build and the state file live in their own modules; importers keep using this one.
export { DEV_BROKER_BIN_ENV, ensureDevBrokerBinary } from './build';
export { DEV_BROKER_STATE_FILE, clearBrokerState, readBrokerState, writeBrokerState, type DevBrokerState } from './state';
export { projectRoot } from '../../runtime/project-root';

/**
 * Development Kafka broker: librdkafka's in-memory mock cluster, built from source by
 * scripts/build-dev-broker.sh and driven over stdin/stdout (see native/dev-broker/mock_cluster.c).
 */
export const DEV_BROKER_WARNING =
  'meterline dev broker: NOT FOR PRODUCTION. In-memory librdkafka mock cluster for development and tests only: ' +
  'no durability, no authentication, partial Kafka protocol (no admin topic APIs, no real transactions).';

/** State file (in a data directory) recording a running broker for other processes to find. */


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

const START_TIMEOUT_MS = 15_000;
const COMMAND_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const STDERR_TAIL_CHARS = 4_000;
/** Kafka's legal topic names. */
const TOPIC_NAME = /^(?!\.{1,2}$)[a-zA-Z0-9._-]{1,249}$/;

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
