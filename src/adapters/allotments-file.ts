import { parseAllotments, type AllotmentCatalog } from '../domain/allotments';
import type { MeterCatalog } from '../domain/meters';
import { MeterlineError } from '../runtime/errors';
import { readYamlFile } from './yaml-file';

/** Reads the allotments file (YAML or JSON) and checks it against the meters file; every problem at once. */
export function loadAllotments(file: string, meters: MeterCatalog): AllotmentCatalog {
  const doc = readYamlFile(file, { code: 'allotments_file', what: 'allotments file', envVar: 'ALLOTMENTS_FILE' });
  const parsed = parseAllotments(doc, new Set(meters.keys()));
  if (!parsed.ok) throw new MeterlineError('allotments_file', `${file} has problems:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
  return parsed.catalog;
}
