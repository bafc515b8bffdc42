import { readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * `dev-clickhouse.json` in the data directory: which process serves the embedded engine's data.
 * Informational, and a guard: an embedded client must not open a data directory that a running
 * dev server holds (two engines on one directory corrupt it). Commands never find the server
 * through it: they use it only when CLICKHOUSE_URL says so.
 */
export const DEV_CLICKHOUSE_STATE_FILE = 'dev-clickhouse.json';

export interface DevClickHouseState {
  readonly url: string;
  readonly pid: number;
  readonly dataPath: string;
  readonly startedAt: string;
}

export function writeDevClickHouseState(dir: string, state: DevClickHouseState): void {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, DEV_CLICKHOUSE_STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
}

/** The recorded server if its process still runs (a stale file from a SIGKILLed server is ignored). */
export function readDevClickHouseState(dir: string): DevClickHouseState | null {
  let state: DevClickHouseState;
  try {
    state = JSON.parse(readFileSync(path.join(dir, DEV_CLICKHOUSE_STATE_FILE), 'utf8')) as DevClickHouseState;
  } catch {
    return null;
  }
  return Number.isInteger(state.pid) && state.pid !== process.pid && isDevClickHouse(state.pid) ? state : null;
}

export function clearDevClickHouseState(dir: string): void {
  rmSync(path.join(dir, DEV_CLICKHOUSE_STATE_FILE), { force: true });
}

/** Whether `pid` is a running `meterline dev-clickhouse` (Linux: by its command line; elsewhere: any live process). */
function isDevClickHouse(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('dev-clickhouse');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || process.platform === 'linux') return false;
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
