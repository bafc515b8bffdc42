import { createBatchingSender, type BatchingOptions, type OutgoingMessage } from '../../src/sdk/batching-sender';
import { isTransientKafkaError } from '../../src/adapters/kafka/kafka';

const msg = (i: number, bytes = 10): OutgoingMessage => ({ key: `acme\u001fe${i}`, value: Buffer.alloc(bytes, i) });
const base: BatchingOptions = {
  lingerMs: 20,
  maxBatchMessages: 100,
  maxBatchBytes: 1 << 20,
  maxPending: 10_000,
  maxAttempts: 3,
  retryBackoffMs: 1,
  isTransient: isTransientKafkaError,
  sleep: async () => undefined,
};
const transient = () => Object.assign(new Error('NOT_LEADER_FOR_PARTITION'), { retriable: true });

function recorder(failures: Error[] = []) {
  const batches: string[][] = [];
  const send = async (messages: readonly OutgoingMessage[]) => {
    const failure = failures.shift();
    if (failure) throw failure;
    batches.push(messages.map((m) => m.key));
  };
  return { batches, send };
}

describe('batching publisher sends', () => {
  it('waits at most the linger for a batch, then sends what it has in one request', async () => {
    const { batches, send } = recorder();
    const sender = createBatchingSender(send, { ...base, lingerMs: 30 });
    const started = Date.now();
    const results = await Promise.all([1, 2, 3].map((i) => sender.submit(msg(i))));
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(results).toEqual([{ ok: true }, { ok: true }, { ok: true }]);
    expect(batches).toEqual([['acme\u001fe1', 'acme\u001fe2', 'acme\u001fe3']]);
  });

  it('cuts batches at the message bound and the byte bound, keeping submission order', async () => {
    const { batches, send } = recorder();
    const byCount = createBatchingSender(send, { ...base, maxBatchMessages: 2, lingerMs: 10_000 });
    await Promise.all([1, 2, 3, 4].map((i) => byCount.submit(msg(i))));
    expect(batches.map((b) => b.length)).toEqual([2, 2]);

    batches.length = 0;
    const byBytes = createBatchingSender(send, { ...base, maxBatchBytes: 25, lingerMs: 5 });
    await Promise.all([1, 2, 3, 4, 5].map((i) => byBytes.submit(msg(i))));
    expect(batches.map((b) => b.length)).toEqual([2, 2, 1]);
    expect(batches.flat()).toEqual([1, 2, 3, 4, 5].map((i) => `acme\u001fe${i}`));
  });

  it('flush sends at once, without waiting for the linger', async () => {
    const { batches, send } = recorder();
    const sender = createBatchingSender(send, { ...base, lingerMs: 60_000 });
    const result = sender.submit(msg(1));
    await sender.flush();
    expect(batches).toEqual([['acme\u001fe1']]);
    await expect(result).resolves.toEqual({ ok: true });
  });

  it('retries a batch that fails with a transient error, then reports success', async () => {
    const { batches, send } = recorder([transient(), transient()]);
    const sender = createBatchingSender(send, base);
    await expect(sender.submit(msg(1))).resolves.toEqual({ ok: true });
    expect(batches).toHaveLength(1);
  });

  it('gives up after maxAttempts, and at once on a permanent error, with the reason per message', async () => {
    const tooMany = createBatchingSender(recorder([transient(), transient(), transient()]).send, base);
    await expect(tooMany.submit(msg(1))).resolves.toMatchObject({ ok: false, reason: 'NOT_LEADER_FOR_PARTITION' });

    const { batches, send } = recorder([Object.assign(new Error('TOPIC_AUTHORIZATION_FAILED'), { retriable: false })]);
    const permanent = createBatchingSender(send, base);
    const results = await Promise.all([permanent.submit(msg(1)), permanent.submit(msg(2))]);
    expect(results).toEqual([expect.objectContaining({ ok: false, reason: 'TOPIC_AUTHORIZATION_FAILED' }), expect.objectContaining({ ok: false })]);
    expect(batches).toEqual([]);
  });

  it('treats a kafkajs "retries exhausted" error wrapping a retriable one as transient', () => {
    const cause = Object.assign(new Error('connection refused'), { retriable: true });
    expect(isTransientKafkaError(Object.assign(new Error('retries exhausted', { cause }), { retriable: false }))).toBe(true);
    expect(isTransientKafkaError(Object.assign(new Error('MESSAGE_TOO_LARGE'), { retriable: false }))).toBe(false);
  });

  it('holds submitters back while maxPending messages wait for acknowledgement', async () => {
    let release: () => void = () => undefined;
    let sends = 0;
    const sender = createBatchingSender(
      async () => {
        sends += 1;
        if (sends === 1) await new Promise<void>((r) => (release = r));
      },
      { ...base, maxPending: 2, maxBatchMessages: 2, lingerMs: 1 },
    );
    const first = [sender.submit(msg(1)), sender.submit(msg(2))];
    let thirdDone = false;
    const third = sender.submit(msg(3)).then((r) => ((thirdDone = true), r));
    await new Promise((r) => setTimeout(r, 30));
    expect(sends).toBe(1);
    expect(thirdDone).toBe(false);
    release();
    await Promise.all(first);
    await expect(third).resolves.toEqual({ ok: true });
  });
});
