import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { MeterlineError, errorMessage } from '../../runtime/errors';

/**
 * Where a running dev broker is recorded, so other commands find it when KAFKA_BROKERS is
 * unset. Synchronous: one small file, read and written from CLI start-up code.
 */
export const DEV_BROKER_STATE_FILE = 'dev-broker.json';

export interface DevBrokerState {
  readonly bootstrapServers: string[];
  readonly pid: number;
  readonly startedAt: string;
}

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
export function isAlive(pid: number): boolean {
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

/** process.kill that tolerates the process having exited already. */
export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
