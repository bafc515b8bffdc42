/**
 * Parses what stripe-node 23 sends on v1: application/x-www-form-urlencoded bodies and query
 * strings in bracket notation (utils.js stringifyRequestData): `payload[value]=42`,
 * `customer_mapping[type]=by_id`, arrays as `expand[0]=a&expand[1]=b`; brackets are left
 * unencoded, values are percent-encoded (the server must accept both encodings).
 */
import { invalidRequest } from './errors';

type Node = Record<string, unknown>;

const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw invalidRequest(`Invalid URL encoding: ${s}`, { rule: 'form_encoding' });
  }
}

/** `a[b][0]` -> ['a', 'b', '0']; `a[]` -> ['a', ''] (append). */
function keyPath(key: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
  if (!m) throw invalidRequest(`Received unknown parameter: ${key}`, { param: key, code: 'parameter_unknown', rule: 'form_key' });
  const rest = [...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!);
  return [m[1]!, ...rest];
}

function isIndexObject(n: Node): boolean {
  const keys = Object.keys(n);
  return keys.length > 0 && keys.every((k) => /^\d+$/.test(k));
}

/** Objects whose keys are all indices become arrays (ordered by index). */
function arrays(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const n = v as Node;
  if (isIndexObject(n)) {
    return Object.keys(n)
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => arrays(n[k]));
  }
  const out: Node = {};
  for (const k of Object.keys(n)) out[k] = arrays(n[k]);
  return out;
}

export function parseForm(raw: string): Node {
  const root: Node = {};
  if (!raw) return root;
  for (const part of raw.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = decode(eq === -1 ? part : part.slice(0, eq));
    const value = decode(eq === -1 ? '' : part.slice(eq + 1));
    const path = keyPath(key);
    let node = root;
    for (let i = 0; i < path.length; i++) {
      let seg = path[i]!;
      if (FORBIDDEN.has(seg)) throw invalidRequest(`Received unknown parameter: ${key}`, { param: key, code: 'parameter_unknown', rule: 'form_key' });
      if (seg === '') seg = String(Object.keys(node).length);
      const last = i === path.length - 1;
      const existing = node[seg];
      if (last) {
        if (existing !== undefined && typeof existing === 'object') {
          throw invalidRequest(`Invalid value for ${key}: expected an object`, { param: key, rule: 'form_shape' });
        }
        node[seg] = value;
      } else {
        if (existing === undefined) node[seg] = {};
        else if (typeof existing !== 'object') throw invalidRequest(`Invalid value for ${key}: ${path.slice(0, i + 1).join('.')} is not an object`, { param: key, rule: 'form_shape' });
        node = node[seg] as Node;
      }
    }
  }
  return arrays(root) as Node;
}
