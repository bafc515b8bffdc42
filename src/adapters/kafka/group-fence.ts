/**
 * A fence before a consumer gives up its partitions: kafkajs rejoins a rebalancing group (and
 * leaves one, on disconnect or after a crash) from inside its ConsumerGroup, as soon as the
 * current fetch's `eachBatch` calls have returned. The ingest source returns from `eachBatch` once
 * a fetch is decided, while its writes are still in flight (so the next fetch overlaps them). If
 * kafkajs rejoined then, another worker could be given the partition, read the same messages from
 * the last committed offset and, not yet finding them in the ledger, store them a second time.
 *
 * So the one place kafkajs joins or leaves, `ConsumerGroup#joinAndSync` and `#leave`, first
 * awaits the fence registered for the member: the source's writes in flight, landed or failed. The
 * group coordinator completes a rebalance only once every member has rejoined (or its rebalance
 * timeout passed), so no worker is assigned the partition before those writes settled — the same
 * bound as a worker that is still inside `eachBatch`.
 *
 * kafkajs exposes no hook for this; its 2.2 line is final (no release since 2.2.4), and
 * `installGroupFence` refuses to start if the methods it wraps are not there.
 */
type Fence = () => Promise<void>;

interface ConsumerGroupPrototype {
  joinAndSync?: (...args: unknown[]) => Promise<unknown>;
  leave?: (...args: unknown[]) => Promise<unknown>;
}

/** Fences by group member id (unique per consumer and generation of membership). */
const fences = new Map<string, Fence>();
let installed = false;

function installGroupFence(): void {
  if (installed) return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ConsumerGroup = require('kafkajs/src/consumer/consumerGroup') as { prototype: ConsumerGroupPrototype };
  const proto = ConsumerGroup.prototype;
  for (const name of ['joinAndSync', 'leave'] as const) {
    const original = proto[name];
    if (typeof original !== 'function') {
      throw new Error(`kafkajs ConsumerGroup#${name} not found: this kafkajs is not the 2.2 line the ingest fence wraps (src/adapters/kafka/group-fence.ts)`);
    }
    proto[name] = async function fenced(this: { memberId?: string | null }, ...args: unknown[]) {
      const fence = this.memberId ? fences.get(this.memberId) : undefined;
      if (fence) await fence();
      return original.apply(this, args);
    };
  }
  installed = true;
}

/**
 * The fence of one consumer: `joined(memberId)` after each join (kafkajs' GROUP_JOIN event), and
 * `release()` when the consumer is gone.
 */
export function groupFence(fence: Fence): { joined(memberId: string): void; release(): void } {
  installGroupFence();
  let member: string | null = null;
  return {
    joined(memberId) {
      if (member !== null) fences.delete(member);
      member = memberId;
      fences.set(memberId, fence);
    },
    release() {
      if (member !== null) fences.delete(member);
      member = null;
    },
  };
}
