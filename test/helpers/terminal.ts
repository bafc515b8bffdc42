import { spawn } from 'node:child_process';
import { CLI, PROJECT_ROOT } from './cli';

export interface TerminalResult {
  readonly code: number | null;
  /** What a person would see: stdout and stderr interleaved, as the terminal received them (CRLF line ends). */
  readonly screen: string;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * Runs the built CLI on a pseudo-terminal, through util-linux `script` (stdin, stdout and stderr
 * are all the terminal), so it behaves exactly as in a person's shell.
 */
export function runInTerminal(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<TerminalResult> {
  const commandLine = [process.execPath, CLI, ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['--quiet', '--flush', '--return', '--command', commandLine, '/dev/null'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'xterm-256color', LOG_LEVEL: 'info', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString()));
    child.stderr.on('data', (d: Buffer) => (screen += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, screen });
    });
  });
}

/** The terminal's text without colours and carriage returns. */
export function plain(screen: string): string {
  // eslint-disable-next-line no-control-regex
  return screen.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r/g, '');
}
