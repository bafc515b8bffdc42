import { parseMeterCatalog, type MeterCatalog } from '../domain/meters';
import { MeterlineError } from '../runtime/errors';
import { readYamlFile } from './yaml-file';

/** Reads meters.yaml / meters.json (YAML is a superset of JSON, so one parser reads both). */
export function loadMeterCatalog(file: string): MeterCatalog {
  const doc = readYamlFile(file, { code: 'meters_file', what: 'meters file', envVar: 'METERS_FILE' });
  const parsed = parseMeterCatalog(doc);
  if (!parsed.ok) throw new MeterlineError('meters_file', `${file} has problems:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
  return parsed.catalog;
}
