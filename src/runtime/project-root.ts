import { existsSync } from 'node:fs';
import path from 'node:path';
import { MeterlineError } from './errors';

/** Directory holding package.json, found from this file in src/ (jest) or dist/ (compiled). */
export function projectRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new MeterlineError('PROJECT_ROOT', `no package.json above ${from}`);
    dir = parent;
  }
}
