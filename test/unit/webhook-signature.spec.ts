import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from '../../src/domain/webhook-signature';

const SECRET = 'whsec_alerts_test';
const BODY = '{"id":"alrt_1","type":"usage.alert.threshold_crossed"}';

describe('alert webhook signature', () => {
  it('is HMAC-SHA256 over "timestamp.body", hex, as a receiver in any language computes it', () => {
    const expected = createHmac('sha256', SECRET).update(`1700000000.${BODY}`).digest('hex');
    expect(signWebhook(SECRET, 1_700_000_000, BODY)).toBe(`v1=${expected}`);
  });

  it('verifies a genuine delivery and refuses a forged, altered or replayed one', () => {
    const ts = 1_700_000_000;
    const signature = signWebhook(SECRET, ts, BODY);
    expect(verifyWebhook(SECRET, { timestamp: String(ts), signature }, BODY, ts + 10)).toEqual({ ok: true });
    expect(verifyWebhook('whsec_other', { timestamp: String(ts), signature }, BODY, ts)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifyWebhook(SECRET, { timestamp: String(ts), signature }, BODY.replace('alrt_1', 'alrt_2'), ts)).toEqual({ ok: false, reason: 'signature mismatch' });
    // The timestamp is signed too: moving it forward to dodge the tolerance breaks the signature.
    expect(verifyWebhook(SECRET, { timestamp: String(ts + 1000), signature }, BODY, ts + 1000)).toEqual({ ok: false, reason: 'signature mismatch' });
    expect(verifyWebhook(SECRET, { timestamp: String(ts), signature }, BODY, ts + 301)).toEqual({ ok: false, reason: 'timestamp outside the tolerance' });
    expect(verifyWebhook(SECRET, { timestamp: undefined, signature }, BODY, ts)).toEqual({ ok: false, reason: 'missing or malformed timestamp' });
    expect(verifyWebhook(SECRET, { timestamp: String(ts), signature: undefined }, BODY, ts)).toEqual({ ok: false, reason: 'signature mismatch' });
  });
});
