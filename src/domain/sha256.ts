import * as crypto from 'node:crypto';

/**
 * sha256 of a string's UTF-8 bytes, as lowercase hex. `crypto.hash` (Node ≥ 20.12) is one call
 * with no Hash object — under half the cost of createHash on an event body, which is hashed once
 * per event on the ingest path; older Node 20 releases take the createHash path. Same digest.
 */
export const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');
