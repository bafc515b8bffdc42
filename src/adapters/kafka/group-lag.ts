import type { Admin, Kafka } from 'kafkajs';

/** One partition's offsets as the broker reports them; `committed` is null when the group has none. */
export interface PartitionOffsets {
  readonly partition: number;
  readonly high: string;
  readonly low: string;
  readonly committed: string | null;
}

export interface GroupOffsetReader {
  /** The topic's ends and the group's committed offsets, read from the broker (not from the consumer). */
  read(): Promise<PartitionOffsets[]>;
  close(): Promise<void>;
}

/**
 * Reads offsets with its own admin client, so the answer does not depend on the consume loop
 * being alive: a stuck consumer still sees the topic's end move away from its committed offsets.
 */
export function createGroupOffsetReader(kafka: Kafka, topic: string, groupId: string): GroupOffsetReader {
  let admin: Admin | null = null;
  const connected = async (): Promise<Admin> => {
    if (admin) return admin;
    const a = kafka.admin();
    await a.connect();
    admin = a;
    return a;
  };
  return {
    async read() {
      const a = await connected();
      try {
        const [ends, groups] = await Promise.all([a.fetchTopicOffsets(topic), a.fetchOffsets({ groupId, topics: [topic] })]);
        const committed = new Map((groups[0]?.partitions ?? []).map((p) => [p.partition, p.offset]));
        return ends.map((e) => {
          const c = committed.get(e.partition);
          return { partition: e.partition, high: e.high, low: e.low, committed: c === undefined || BigInt(c) < 0n ? null : c };
        });
      } catch (err) {
        // Reconnect on the next read: the cluster may have moved.
        admin = null;
        await a.disconnect().catch(() => undefined);
        throw err;
      }
    },
    async close() {
      await admin?.disconnect();
      admin = null;
    },
  };
}
