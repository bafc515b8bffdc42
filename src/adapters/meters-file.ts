import fs from 'node:fs';
import YAML from 'yaml';
import { parseMeterCatalog, type MeterCatalog } from '../domain/meters';
import { MeterlineError } from '../runtime/errors';

/** Reads meters.yaml / meters.json (YAML is a superset of JSON, so one parser reads both). */
export function loadMeterCatalog(file: string): MeterCatalog {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeterlineError('meters_file', `cannot read the meters file ${file}: ${(err as Error).message} (set METERS_FILE)`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new MeterlineError('meters_file', `${file} is not valid YAML/JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseMeterCatalog(doc);
  if (!parsed.ok) throw new MeterlineError('meters_file', `${file} has problems:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
  return parsed.catalog;
}
