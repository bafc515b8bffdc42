import type { SendOutcome } from '../../src/adapters/stripe/billing-sink';
import { pacedRead } from '../../src/adapters/stripe/read-retry';
import { sendSplittingOnReject } from '../../src/adapters/stripe/stream-batch-split';

describe('a stream batch refused with a 400', () => {
  it('is split until the invalid events are alone: they fail, the others are delivered, outcomes in order', async () => {
    const sent: string[][] = [];
    const send = async (batch: readonly string[]): Promise<SendOutcome> => {
      sent.push([...batch]);
      return batch.some((e) => e.startsWith('bad')) ? { kind: 'failed', reason: 'StripeInvalidRequestError 400: invalid' } : { kind: 'reported' };
    };
    const events = ['a', 'bad1', 'c', 'd', 'e', 'bad2', 'g'];
    const outcomes = await sendSplittingOnReject(events, send);
    expect(outcomes.map((o) => o.kind)).toEqual(['reported', 'failed', 'reported', 'reported', 'reported', 'failed', 'reported']);
    expect(sent[0]).toEqual(events);
  });
  it('is not split for a retryable answer (the whole batch is retried later)', async () => {
    let calls = 0;
    const outcomes = await sendSplittingOnReject(['a', 'b', 'c'], async () => ((calls += 1), { kind: 'retry', reason: '503' }));
    expect(calls).toBe(1);
    expect(outcomes.map((o) => o.kind)).toEqual(['retry', 'retry', 'retry']);
  });
});

describe('paced reads', () => {
  const sleep = async () => undefined;
  it('retry a 429 (and a 400 rate_limit) until Stripe answers, taking a rate-limit token per call', async () => {
    let calls = 0;
    let tokens = 0;
    const read = await pacedRead(
      async () => {
        calls += 1;
        if (calls === 1) throw Object.assign(new Error('slow down'), { type: 'StripeRateLimitError', statusCode: 429 });
        if (calls === 2) throw Object.assign(new Error('slow down'), { type: 'StripeRateLimitError', statusCode: 400, code: 'rate_limit' });
        return 'summary';
      },
      { sleep, rateLimit: async () => (tokens += 1) },
    );
    expect(read).toBe('summary');
    expect(tokens).toBe(3);
  });
  it('give up on other 4xx at once, and on rate limits after the configured attempts', async () => {
    let calls = 0;
    await expect(pacedRead(async () => ((calls += 1), Promise.reject(Object.assign(new Error('no such meter'), { statusCode: 404 }))), { sleep })).rejects.toThrow('no such meter');
    expect(calls).toBe(1);
    await expect(pacedRead(async () => Promise.reject(Object.assign(new Error('slow down'), { statusCode: 429 })), { sleep, attempts: 3 })).rejects.toThrow('slow down');
  });
});
