import type { UsageEvent } from '../domain/usage-event';

/**
 * Group commit for concurrent requests: while one send to Kafka is in flight, the events of
 * the requests arriving meanwhile wait and then go out together in the next send. One send at
 * a time keeps the idempotent producer's ordering; each request's promise settles with the
 * send that carried its events (acks from all in-sync replicas), so a request is answered only
 * once its own events are durable. A failed send fails every request it carried.
 */
export function createPublishQueue(publish: (events: readonly UsageEvent[]) => Promise<void>, opts: { maxEventsPerSend: number }) {
  const waiting: { events: readonly UsageEvent[]; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let sending = false;
  const drain = async () => {
    sending = true;
    while (waiting.length > 0) {
      const batch: typeof waiting = [];
      let n = 0;
      while (waiting.length > 0 && (batch.length === 0 || n + waiting[0]!.events.length <= opts.maxEventsPerSend)) {
        const next = waiting.shift()!;
        batch.push(next);
        n += next.events.length;
      }
      try {
        await publish(batch.flatMap((b) => b.events));
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    sending = false;
  };
  return {
    publish(events: readonly UsageEvent[]): Promise<void> {
      if (events.length === 0) return Promise.resolve();
      const done = new Promise<void>((resolve, reject) => waiting.push({ events, resolve, reject }));
      if (!sending) void drain();
      return done;
    },
    /** Resolves when nothing is waiting or in flight. */
    async idle(): Promise<void> {
      while (sending || waiting.length > 0) await new Promise((r) => setTimeout(r, 5));
    },
  };
}
