/**
 * Scrubs secrets out of text that is about to be printed or stored (error messages, push
 * errors). Two nets: the configured secret values themselves, and the shapes of secrets —
 * Stripe keys (Stripe's own 401 message quotes the key, masked as `sk_test_****abcd`),
 * webhook secrets, meterline API keys, and passwords in URLs.
 */
const REDACTED = '[redacted]';
const STRIPE_KEY = /\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9*]+/g;
const WEBHOOK_SECRET = /\bwhsec_[A-Za-z0-9+/=_-]+/g;
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi;
/** meterline's own tenant API keys (src/gateway/api-key.ts): `mlk_<12 hex>_<43 base64url>`. */
export const API_KEY_SHAPE = /\bmlk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}/g;
/** Shorter values are too likely to occur in ordinary text to be replaced everywhere. */
export const MIN_SECRET_LENGTH = 4;

export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  return replaceSecretValues(text, secrets).replace(STRIPE_KEY, REDACTED).replace(WEBHOOK_SECRET, REDACTED).replace(API_KEY_SHAPE, REDACTED).replace(URL_USERINFO, `$1${REDACTED}@`);
}

/** Replaces each secret value (longest first, so one containing another goes whole) in `text`. */
export function replaceSecretValues(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) {
    if (s.length >= MIN_SECRET_LENGTH && out.includes(s)) out = out.split(s).join(REDACTED);
  }
  return out;
}

/**
 * The secret values of an environment, read without validating it (so that they are known
 * even when the configuration itself is invalid): passwords, keys, and URL passwords.
 */
export function secretsInEnv(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const name of ['CLICKHOUSE_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD', 'STRIPE_API_KEY', 'STRIPE_WEBHOOK_SECRET']) {
    const v = env[name]?.trim();
    if (v) out.push(v);
  }
  for (const name of ['CLICKHOUSE_URL', 'SCHEMA_REGISTRY_URL']) {
    const v = env[name];
    if (!v || !URL.canParse(v)) continue;
    const password = new URL(v).password;
    if (password) out.push(password, decodeURIComponent(password));
  }
  return out;
}
