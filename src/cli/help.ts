import type { Command } from 'commander';

/** Adds an "Examples:" section to a command's --help: each a one-line purpose, then the command line. */
export function withExamples(command: Command, examples: readonly (readonly [purpose: string, commandLine: string])[]): Command {
  const text = examples.map(([purpose, line]) => `  # ${purpose}\n  $ ${line}`).join('\n\n');
  return command.addHelpText('after', `\nExamples:\n${text}\n`);
}

/** Marks every option declared with requiredOption as "(required)" in --help, on every command. */
export function markRequiredOptions(command: Command): void {
  for (const option of command.options) {
    if (option.mandatory && !option.description.startsWith('(required)')) option.description = `(required) ${option.description}`;
  }
  for (const sub of command.commands) markRequiredOptions(sub);
}

/** Every command that runs something (leaves of the command tree), with its full name. */
export function runnableCommands(command: Command, prefix: string[] = []): { name: string; command: Command }[] {
  const names = [...prefix, command.name()];
  if (command.commands.length === 0) return [{ name: names.slice(1).join(' '), command }];
  return command.commands.flatMap((sub) => runnableCommands(sub, names));
}
