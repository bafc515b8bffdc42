import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/main';
import { runnableCommands } from '../../src/cli/help';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { version } = require('../../package.json') as { version: string };

/** What `meterline <command> --help` prints. */
function helpOf(command: Command): string {
  let out = '';
  command.configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  command.outputHelp();
  return out;
}

describe('meterline --help', () => {
  const commands = runnableCommands(buildProgram());

  it('walks every command (the ones a user can run)', () => {
    expect(commands.map((c) => c.name)).toEqual(
      expect.arrayContaining(['run', 'publish', 'query', 'stats', 'reconcile', 'dlq list', 'dlq redrive', 'customers import', 'migrate', 'schemas check', 'config', 'sample', 'replay', 'backfill', 'rebuild', 'dev-broker', 'dev-clickhouse']),
    );
  });

  const byName = (name: string) => commands.find((c) => c.name === name)!.command;

  it.each(commands.map((c) => c.name))('%s --help has an Examples section that runs the command', (name) => {
    const command = byName(name);
    const help = helpOf(command);
    const examples = help.slice(help.indexOf('\nExamples:\n'));
    expect(help).toContain('\nExamples:\n');
    const lines = examples.split('\n').filter((l) => l.startsWith('  $ '));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes(`meterline ${name}`))).toBe(true);
  });

  it.each(commands.map((c) => c.name))('%s --help marks its required options', (name) => {
    const command = byName(name);
    const help = helpOf(command);
    for (const option of command.options.filter((o) => o.mandatory)) {
      expect(help).toMatch(new RegExp(`${option.long}\\s+<[^>]+>\\s+\\(required\\) `));
    }
    for (const option of command.options.filter((o) => !o.mandatory)) expect(option.description).not.toContain('(required)');
  });

  it('query marks --tenant, --from and --to as required', () => {
    const help = helpOf(byName('query'));
    for (const flag of ['--tenant', '--from', '--to']) expect(help).toMatch(new RegExp(`${flag} <\\w+>\\s+\\(required\\)`));
  });

  it('--version prints the package version', async () => {
    let out = '';
    const program = buildProgram().configureOutput({ writeOut: (s) => (out += s) });
    await expect(program.parseAsync(['node', 'meterline', '--version'])).rejects.toMatchObject({ code: 'commander.version', exitCode: 0 });
    expect(out).toBe(`${version}\n`);
  });
});
