// Compiled (not run) by the example test: the package's types as an application sees them.
import { createPublisher, type PublishOutcome, type UsageEventInput } from 'meterline';

export async function typed(): Promise<string[]> {
  const publisher = await createPublisher({ brokers: ['localhost:9092'], lingerMs: 5, maxBatchEvents: 500 });
  const event: UsageEventInput = { id: 'e-1', tenant: 'acme', customer: 'c-1', meter: 'tokens', value: '2.5', timestamp: new Date() };
  const outcome: PublishOutcome = await publisher.publish(event);
  await publisher.close();
  switch (outcome.status) {
    case 'published':
      return [outcome.event.id, outcome.event.value];
    case 'rejected':
      return [outcome.reason];
    case 'failed':
      return [outcome.event.id, outcome.reason];
  }
}
