import { generateEvents } from '../domain/sample';
import type { Publisher } from '../adapters/kafka/publisher';
import type { Logger } from '../runtime/logger';

/**
 * Demo traffic for `meterline run` on embedded defaults only: a trickle of sample events
 * (with some exact duplicates) so a newcomer sees usage flow. Never started against a
 * configured Kafka.
 */
export function startDemoProducer(publisher: Publisher, logger: Logger, opts: { eventsPerTick?: number; tickMs?: number } = {}): { stop(): Promise<void> } {
  const perTick = opts.eventsPerTick ?? 50;
  let seed = Date.now() % 1_000_000;
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      const events = generateEvents({ count: perTick, seed: seed++, duplicateRate: 0.1, start: Date.now() - 60_000, spanMs: 60_000, idPrefix: 'demo' });
      try {
        await publisher.publish(events);
      } catch (err) {
        logger.warn({ err }, 'demo producer could not publish');
      }
    });
  }, opts.tickMs ?? 1000);
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
