import type * as avro from 'avsc';

/**
 * A deterministic, valid value of any avsc type, for proving compatibility on real bytes:
 * unions take their first non-null branch, arrays and maps hold one item, named types recurse
 * at most once.
 */
export function sampleValue(type: avro.Type, depth = 0): unknown {
  const t = type as avro.Type & Record<string, unknown>;
  const name = type.typeName;
  if (name === 'logical:decimal') return '12.5';
  if (name.startsWith('logical:')) return sampleValue(t.underlyingType as avro.Type, depth);
  if (name.startsWith('union:')) {
    const branches = t.types as avro.Type[];
    const branch = depth > 3 ? branches[0] : (branches.find((b) => b.typeName !== 'null') ?? branches[0]);
    const value = branch ? sampleValue(branch, depth + 1) : null;
    return name === 'union:wrapped' && branch && branch.typeName !== 'null' ? { [branch.branchName!]: value } : value;
  }
  switch (name) {
    case 'null':
      return null;
    case 'boolean':
      return true;
    case 'int':
      return 7;
    case 'long':
      return 1_700_000_000_000;
    case 'float':
    case 'double':
      return 1.5;
    case 'bytes':
      return Buffer.from([1, 2, 3]);
    case 'string':
      return 'sample';
    case 'fixed':
      return Buffer.alloc(t.size as number, 1);
    case 'enum':
      return (t.symbols as string[])[0];
    case 'array':
      return depth > 3 ? [] : [sampleValue(t.itemsType as avro.Type, depth + 1)];
    case 'map':
      return depth > 3 ? {} : { key: sampleValue(t.valuesType as avro.Type, depth + 1) };
    case 'record':
    case 'error': {
      const out: Record<string, unknown> = {};
      for (const f of t.fields as { name: string; type: avro.Type }[]) out[f.name] = sampleValue(f.type, depth + 1);
      return out;
    }
    default:
      throw new Error(`no sample for Avro type ${name}`);
  }
}
