import { createEventTime } from '../../src/pipeline/event-time';
import type { WatermarkStore } from '../../src/ports/watermarks';

/** A watermark store in memory whose next saves can be made to fail (a ClickHouse fault). */
function memoryStore() {
  const maxima = new Map<number, number>();
  let failures = 0;
  const store: WatermarkStore = {
    async loadPartitionMaxima() {
      return new Map(maxima);
    },
    async save(_topic, byPartition) {
      if (failures > 0) {
        failures -= 1;
        throw new Error('injected: the insert failed');
      }
      for (const [p, max] of byPartition) maxima.set(p, Math.max(max, maxima.get(p) ?? -Infinity));
    },
    async loadWatermark() {
      return null;
    },
  };
  return { store, maxima, failNext: (n: number) => (failures = n) };
}

describe("a worker's event time across restarts", () => {
  const now = 1_800_000_000_000;
  const options = (store: WatermarkStore) => ({ store, topic: 't', clock: () => now, watermarks: { outOfOrdernessMs: 5_000, idleTimeoutMs: 30_000 } });

  it('given a save that fails, then the next save still carries the partition maxima it held, and a restart restores them', async () => {
    const mem = memoryStore();
    const first = createEventTime(options(mem.store));
    await first.restore();
    first.assigned([0, 1]);
    first.observe(0, now - 1_000);
    first.observe(1, now - 2_000);
    mem.failNext(1);
    await expect(first.save()).rejects.toThrow('injected');
    // Nothing new arrives on either partition; the next periodic save must still persist both.
    await first.save();
    expect(mem.maxima).toEqual(new Map([[0, now - 1_000], [1, now - 2_000]]));

    // A restarted worker starts from them: a watermark at once, so an event days old is too late.
    const second = createEventTime(options(mem.store));
    await second.restore();
    second.assigned([0, 1]);
    expect(second.watermark()).toBe(now - 2_000 - 5_000);
  });

  it('given a save that fails while newer maxima arrive, then the retried save keeps the highest', async () => {
    const mem = memoryStore();
    const et = createEventTime(options(mem.store));
    await et.restore();
    et.assigned([0]);
    et.observe(0, now - 9_000);
    mem.failNext(1);
    const failing = et.save();
    et.observe(0, now - 3_000);
    await expect(failing).rejects.toThrow('injected');
    await et.save();
    expect(mem.maxima.get(0)).toBe(now - 3_000);
  });
});
