import type { UsageEvent } from '../../src/domain/usage-event';
import { createPublishQueue } from '../../src/gateway/publish-queue';

const ev = (id: string): UsageEvent => ({ id, tenant: 't', customer: 'c', meter: 'm', value: '1', timestamp: 0, properties: {}, source: null });

describe('the publish queue (group commit for concurrent requests)', () => {
  it('sends one batch at a time, grouping the requests that arrived meanwhile, in order', async () => {
    const sends: string[][] = [];
    let release: () => void = () => undefined;
    const queue = createPublishQueue(
      (events) => {
        sends.push(events.map((e) => e.id));
        return new Promise<void>((r) => (release = r));
      },
      { maxEventsPerSend: 3 },
    );
    const settled: string[] = [];
    const a = queue.publish([ev('a')]).then(() => settled.push('a'));
    const b = queue.publish([ev('b1'), ev('b2')]).then(() => settled.push('b'));
    const c = queue.publish([ev('c')]).then(() => settled.push('c'));
    const d = queue.publish([ev('d1'), ev('d2')]).then(() => settled.push('d'));
    expect(sends).toEqual([['a']]);
    release();
    await a;
    await new Promise((r) => setImmediate(r));
    // b and c fit in one send of at most 3 events; d waits for the next.
    expect(sends).toEqual([['a'], ['b1', 'b2', 'c']]);
    expect(settled).toEqual(['a']);
    release();
    await Promise.all([b, c]);
    await new Promise((r) => setImmediate(r));
    expect(sends).toEqual([['a'], ['b1', 'b2', 'c'], ['d1', 'd2']]);
    release();
    await d;
    expect(settled).toEqual(['a', 'b', 'c', 'd']);
    await queue.idle();
  });

  it('fails every request whose events were in a failed send, and keeps sending later ones', async () => {
    let fail = true;
    const queue = createPublishQueue(async () => {
      if (fail) throw new Error('broker down');
    }, { maxEventsPerSend: 100 });
    await expect(queue.publish([ev('x')])).rejects.toThrow('broker down');
    fail = false;
    await expect(queue.publish([ev('y')])).resolves.toBeUndefined();
  });
});
