import { MeterlineError } from '../../src/runtime/errors';
import { backoffDelay, isRetriableError, retry } from '../../src/runtime/retry';

const transient = (n: number) => new MeterlineError('registry_unavailable', `try ${n}`, { retriable: true });
const permanent = () => new MeterlineError('schema_incompatible', 'incompatible', { retriable: false });

/** A call that fails with the given errors, one per call, then answers 'ok'. */
function failing(errors: unknown[]) {
  const calls: number[] = [];
  const fn = async (attempt: number) => {
    calls.push(attempt);
    const err = errors[calls.length - 1];
    if (err !== undefined) throw err;
    return 'ok';
  };
  return { fn, calls };
}

describe('retry', () => {
  const sleeps: number[] = [];
  const sleep = async (ms: number) => void sleeps.push(ms);
  beforeEach(() => (sleeps.length = 0));

  it('retries a retriable MeterlineError until the call succeeds, sleeping between calls', async () => {
    const { fn, calls } = failing([transient(1), transient(2)]);
    await expect(retry(fn, { attempts: 5, sleep, delay: (a) => a * 100 })).resolves.toBe('ok');
    expect(calls).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([100, 200]);
  });

  it('throws an error that is not retriable at once', async () => {
    for (const err of [permanent(), new Error('a plain error'), Object.assign(new Error('duck'), { retriable: true })]) {
      const { fn, calls } = failing([err]);
      await expect(retry(fn, { attempts: 5, sleep })).rejects.toBe(err);
      expect(calls).toEqual([1]);
    }
    expect(sleeps).toEqual([]);
  });

  it('gives up after the given attempts with the last error', async () => {
    const errors = [transient(1), transient(2), transient(3), transient(4)];
    const { fn, calls } = failing(errors);
    await expect(retry(fn, { attempts: 3, sleep })).rejects.toBe(errors[2]);
    expect(calls).toEqual([1, 2, 3]);
    expect(sleeps).toHaveLength(2);
  });

  it('asks isRetriable when given one, instead of MeterlineError.retriable', async () => {
    const rateLimited = Object.assign(new Error('slow down'), { statusCode: 429 });
    const { fn, calls } = failing([rateLimited, permanent()]);
    const err = await retry(fn, { attempts: 5, sleep, isRetriable: (e) => (e as { statusCode?: number }).statusCode === 429 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MeterlineError);
    expect(calls).toEqual([1, 2]);
  });

  it('runs onRetry after each retriable failure, before the wait; its own error ends the retries', async () => {
    const seen: string[] = [];
    const { fn } = failing([transient(1), transient(2)]);
    await retry(fn, { attempts: 5, sleep: async (ms) => void seen.push(`sleep ${ms}`), delay: () => 7, onRetry: (err, attempt) => void seen.push(`retry ${attempt}: ${(err as Error).message}`) });
    expect(seen).toEqual(['retry 1: try 1', 'sleep 7', 'retry 2: try 2', 'sleep 7']);

    const ledgerDown = new Error('ledger unreachable');
    const second = failing([transient(1), transient(2)]);
    await expect(retry(second.fn, { attempts: 5, sleep, onRetry: () => Promise.reject(ledgerDown) })).rejects.toBe(ledgerDown);
    expect(second.calls).toEqual([1]);
  });

  it('waits with exponential backoff and full jitter by default', async () => {
    const { fn } = failing([transient(1), transient(2), transient(3)]);
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      await retry(fn, { attempts: 5, sleep });
    } finally {
      random.mockRestore();
    }
    expect(sleeps).toEqual([249, 499, 999]);
  });

  it('knows a retriable MeterlineError from anything else', () => {
    expect(isRetriableError(transient(1))).toBe(true);
    expect(isRetriableError(permanent())).toBe(false);
    expect(isRetriableError(new Error('x'))).toBe(false);
    expect(isRetriableError(undefined)).toBe(false);
  });
});

describe('backoffDelay (full jitter)', () => {
  it.each<[number, number, number]>([
    // attempt, ceiling with the defaults (250 ms doubling, at most 30 s)
    [1, 250, 250],
    [2, 500, 500],
    [5, 4_000, 4_000],
    [8, 30_000, 30_000],
    [30, 30_000, 30_000],
  ])('attempt %i waits between 0 and %i ms', (attempt, ceiling) => {
    expect(backoffDelay(attempt, { random: () => 0 })).toBe(0);
    expect(backoffDelay(attempt, { random: () => 0.999_999 })).toBe(ceiling - 1);
    for (let i = 0; i < 200; i += 1) {
      const d = backoffDelay(attempt);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(ceiling);
    }
  });

  it('takes its base and cap from the caller', () => {
    expect(backoffDelay(3, { baseMs: 500, maxMs: 1_500, random: () => 0.5 })).toBe(750);
  });
});
