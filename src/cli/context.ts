import { loadConfig, secretValues, type Config } from '../config/config';
import { createLogger, type Logger } from '../runtime/logger';

/** What every command starts from: validated config and a logger. Nothing is connected yet. */
export interface CommandContext {
  readonly config: Config;
  readonly logger: Logger;
}

export function createContext(env: NodeJS.ProcessEnv = process.env): CommandContext {
  const config = loadConfig(env);
  return { config, logger: createLogger({ level: config.logLevel, format: config.logFormat, secrets: secretValues(config) }) };
}

/** Ends a long-running command on SIGINT/SIGTERM; resolves with the signal's name. */
export function waitForShutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (sig: NodeJS.Signals) => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      resolve(sig);
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  });
}
