import fs from 'node:fs';
import YAML from 'yaml';
import { MeterlineError } from '../runtime/errors';

/**
 * Reads a YAML or JSON configuration file (YAML is a superset of JSON, so one parser reads both),
 * with one clear error per failure: `what` names the file for people, `envVar` where it is set.
 */
export function readYamlFile(file: string, o: { code: string; what: string; envVar: string }): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeterlineError(o.code, `cannot read the ${o.what} ${file}: ${(err as Error).message} (set ${o.envVar})`, { cause: err });
  }
  try {
    return YAML.parse(text);
  } catch (err) {
    throw new MeterlineError(o.code, `${file} is not valid YAML/JSON: ${(err as Error).message}`, { cause: err });
  }
}
