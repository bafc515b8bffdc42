import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Tenant API keys: `mlk_<id>_<secret>`, where the id (12 hex digits) names the key's record
 * and the secret is 32 random bytes (256 bits, base64url). Only sha256(key) is stored.
 *
 * Why sha256 and not a slow hash (bcrypt, scrypt): slow hashes protect low-entropy secrets
 * chosen by people (a leaked hash of "hunter2" is cracked by guessing). A 256-bit random key
 * cannot be guessed, so a leaked sha256 of it is as good as useless, while a slow hash would
 * cost milliseconds of CPU on every request.
 */
export const API_KEY_PREFIX = 'mlk_';
const KEY_RE = /^mlk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface NewApiKey {
  readonly id: string;
  /** The full key: shown once, never stored. */
  readonly key: string;
  readonly hash: string;
}

export function generateApiKey(random: (n: number) => Buffer = randomBytes): NewApiKey {
  const id = random(6).toString('hex');
  const key = `${API_KEY_PREFIX}${id}_${random(32).toString('base64url')}`;
  return { id, key, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** The key of an `Authorization: Bearer <key>` header, with its record id; undefined if malformed. */
export function parseBearer(header: string | undefined): { id: string; key: string } | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer ([^\s]+)$/i.exec(header.trim());
  if (!m) return undefined;
  const key = m[1]!;
  const parts = KEY_RE.exec(key);
  return parts ? { id: parts[1]!, key } : undefined;
}

/** Constant-time: compares the stored hash with the presented key's hash (equal lengths by construction). */
export function keyMatchesHash(key: string, storedHash: string): boolean {
  const presented = Buffer.from(hashApiKey(key), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
