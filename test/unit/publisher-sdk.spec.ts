import type { Kafka } from 'kafkajs';
import { createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { parseEventLine } from '../../src/domain/ndjson';
import { createPublisher } from '../../src/sdk/create-publisher';

/** A kafkajs stand-in that records what the producer sends (the SDK's only I/O). */
function recordingKafka(fail: (attempt: number) => Error | undefined = () => undefined) {
  const sends: { topic: string; keys: string[]; acks: number }[] = [];
  let connected = false;
  let attempts = 0;
  const kafka = {
    producer: () => ({
      connect: async () => void (connected = true),
      disconnect: async () => void (connected = false),
      send: async (r: { topic: string; messages: { key: string }[]; acks: number }) => {
        if (!connected) throw new Error('not connected');
        const err = fail(attempts);
        attempts += 1;
        if (err) throw err;
        sends.push({ topic: r.topic, keys: r.messages.map((m) => m.key), acks: r.acks });
        return [];
      },
    }),
  } as unknown as Kafka;
  return { kafka, sends };
}

const NOW = Date.UTC(2026, 10, 29, 12);
const good = { id: 'e-1', tenant: 'acme', customer: 'c-1', meter: 'tokens', value: '2.5', timestamp: NOW - 1000 };

describe('createPublisher (the producer SDK)', () => {
  it('rejects exactly what `meterline publish` rejects, with the same reason, and sends nothing for it', async () => {
    const { kafka, sends } = recordingKafka();
    const publisher = await createPublisher({ kafka, env: { KAFKA_TOPIC: 'usage.events' }, encoder: createSingleObjectEncoder(), clock: () => NOW, lingerMs: 1 });
    const bad: Record<string, unknown>[] = [
      { ...good, value: '-1' },
      { ...good, value: '1.0000000001' },
      { ...good, id: ' padded' },
      { ...good, meter: 'no spaces allowed' },
      { ...good, timestamp: NOW + 3_600_000 },
      { ...good, properties: { n: 1 } },
      { ...good, extra: 'field' },
      { ...good, tenant: undefined },
    ];
    for (const b of bad) {
      const line = parseEventLine(JSON.stringify(b), { now: NOW, maxFutureSkewMs: 300_000 });
      expect(line.ok).toBe(false);
      const outcome = await publisher.publish(b as never);
      expect(outcome).toEqual({ status: 'rejected', reason: (line as { reason: string }).reason });
    }
    await publisher.close();
    expect(sends).toEqual([]);
  });

  it('keys by (tenant, id) as `meterline publish` does, fills the publisher tenant, and accepts a Date', async () => {
    const { kafka, sends } = recordingKafka();
    const publisher = await createPublisher({ kafka, env: { KAFKA_TOPIC: 'usage.events' }, tenant: 'acme', clock: () => NOW, lingerMs: 1 });
    const { tenant: _t, ...noTenant } = good;
    const [a, b, other] = await publisher.publishMany([noTenant, { ...noTenant, id: 'e-2', timestamp: new Date(NOW - 5) }, { ...good, tenant: 'globex' }]);
    await publisher.close();
    expect(a).toMatchObject({ status: 'published', event: { tenant: 'acme', id: 'e-1', value: '2.5', timestamp: NOW - 1000 } });
    expect(b).toMatchObject({ status: 'published', event: { id: 'e-2', timestamp: NOW - 5 } });
    expect(other).toEqual({ status: 'rejected', reason: 'tenant "globex" does not match the publisher tenant "acme"' });
    expect(sends).toEqual([{ topic: 'usage.events', keys: ['acme\u001fe-1', 'acme\u001fe-2'], acks: -1 }]);
  });

  it('close() sends what still waits for its linger before disconnecting', async () => {
    const { kafka, sends } = recordingKafka();
    const publisher = await createPublisher({ kafka, env: {}, clock: () => NOW, lingerMs: 60_000 });
    const outcomes = [publisher.publish(good), publisher.publish({ ...good, id: 'e-2' })];
    await publisher.close();
    await expect(Promise.all(outcomes)).resolves.toEqual([expect.objectContaining({ status: 'published' }), expect.objectContaining({ status: 'published' })]);
    expect(sends.flatMap((s) => s.keys)).toEqual(['acme\u001fe-1', 'acme\u001fe-2']);
    await expect(publisher.publish(good)).rejects.toThrow(/after close/);
  });

  it('retries a transient broker error and reports an event failed only when retries run out', async () => {
    const transient = () => Object.assign(new Error('NOT_LEADER_FOR_PARTITION'), { retriable: true });
    const once = recordingKafka((n) => (n === 0 ? transient() : undefined));
    const p1 = await createPublisher({ kafka: once.kafka, env: {}, clock: () => NOW, lingerMs: 1, retryBackoffMs: 1 });
    expect(await p1.publish(good)).toMatchObject({ status: 'published' });
    await p1.close();

    const always = recordingKafka(() => transient());
    const p2 = await createPublisher({ kafka: always.kafka, env: {}, clock: () => NOW, lingerMs: 1, retryBackoffMs: 1, maxAttempts: 3 });
    expect(await p2.publish(good)).toMatchObject({ status: 'failed', reason: 'NOT_LEADER_FOR_PARTITION', event: { id: 'e-1' } });
    await p2.close();
  });
});
