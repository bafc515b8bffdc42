import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Alert webhooks are signed like Stripe's: HMAC-SHA256 with the shared secret over
 * `${timestamp}.${body}` (timestamp in Unix seconds, body the exact bytes sent), hex-encoded.
 * Headers: `Meterline-Timestamp: <seconds>` and `Meterline-Signature: v1=<hex>`.
 */
export const SIGNATURE_HEADER = 'meterline-signature';
export const TIMESTAMP_HEADER = 'meterline-timestamp';
export const ALERT_ID_HEADER = 'meterline-alert-id';

export function signWebhook(secret: string, timestampSeconds: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does: recompute the signature, compare in constant time, and refuse a
 * timestamp older (or newer) than `toleranceSeconds`, so a captured request cannot be replayed later.
 */
export function verifyWebhook(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): { ok: true } | { ok: false; reason: string } {
  const ts = Number(headers.timestamp);
  if (!headers.timestamp || !Number.isSafeInteger(ts)) return { ok: false, reason: 'missing or malformed timestamp' };
  if (Math.abs(nowSeconds - ts) > toleranceSeconds) return { ok: false, reason: 'timestamp outside the tolerance' };
  const expected = Buffer.from(signWebhook(secret, ts, body));
  const given = Buffer.from(headers.signature ?? '');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true };
}
