import fs from 'node:fs';
import YAML from 'yaml';
import { parseAllotments, type AllotmentCatalog } from '../domain/allotments';
import type { MeterCatalog } from '../domain/meters';
import { MeterlineError } from '../runtime/errors';

/** Reads the allotments file (YAML or JSON) and checks it against the meters file; every problem at once. */
export function loadAllotments(file: string, meters: MeterCatalog): AllotmentCatalog {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new MeterlineError('allotments_file', `cannot read the allotments file ${file}: ${(err as Error).message} (set ALLOTMENTS_FILE)`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new MeterlineError('allotments_file', `${file} is not valid YAML/JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = parseAllotments(doc, new Set(meters.keys()));
  if (!parsed.ok) throw new MeterlineError('allotments_file', `${file} has problems:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
  return parsed.catalog;
}
