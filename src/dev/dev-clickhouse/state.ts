import { readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

/**
 * `dev-clickhouse.json` in the data directory: which process serves the embedded engine's data
 * (`meterline dev-clickhouse`, or `meterline run` in embedded mode). Another command on the same
 * data directory must not open a second engine on it (two engines on one directory corrupt it):
 * without CLICKHOUSE_URL it talks to the recorded server instead.
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

/** Whether `pid` is a running `meterline dev-clickhouse` or `meterline run` (Linux: by its command line; elsewhere: any live process). */
function isDevClickHouse(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.includes('dev-clickhouse') || (argv.includes('run') && argv.some((a) => /meterline$/.test(a)));
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
