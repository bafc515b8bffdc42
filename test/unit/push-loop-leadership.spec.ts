import { startPushLoop } from '../../src/pipeline/push-loop';
import type { Pusher } from '../../src/pipeline/pusher';
import { silentLogger } from '../../src/runtime/logger';

describe('the push loop when leadership moves', () => {
  it('has the pusher resign (its awaiting-mapping gauge goes to 0) when this process stops being the pusher', async () => {
    const calls: string[] = [];
    const pusher = {
      resendPending: async () => (calls.push('resend'), { resent: 0, held: 0 }),
      cycle: async () => (calls.push('cycle'), { started: 0, awaitingMapping: 2, tooOld: 0, deferred: 0 }),
      resign: () => void calls.push('resign'),
      stop: async () => undefined,
    } as unknown as Pusher;
    let leader = true;
    const loop = await startPushLoop(pusher, silentLogger(), 5, { isLeader: () => leader, graceMs: 0 });
    const until = async (what: () => boolean) => {
      for (let i = 0; i < 200 && !what(); i += 1) await new Promise((r) => setTimeout(r, 5));
    };
    await until(() => calls.includes('cycle'));
    expect(calls).not.toContain('resign');
    leader = false;
    await until(() => calls.includes('resign'));
    await new Promise((r) => setTimeout(r, 30));
    await loop.stop();
    expect(calls.filter((c) => c === 'resign')).toEqual(['resign']);
    expect(calls.lastIndexOf('cycle')).toBeLessThan(calls.indexOf('resign'));
  });
});
