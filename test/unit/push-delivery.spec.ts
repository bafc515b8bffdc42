import type { PushStatus, PushStore } from '../../src/adapters/clickhouse/push-store';
import type { SendOutcome } from '../../src/adapters/stripe/billing-sink';
import type { PlannedPush } from '../../src/domain/push-plan';
import { streamKey } from '../../src/domain/keys';
import { createDelivery } from '../../src/pipeline/push-delivery';
import { silentLogger } from '../../src/runtime/logger';

const push: PlannedPush = {
  tenant: 't',
  customer: 'c',
  meter: 'tokens',
  identifier: 'ml_0001',
  eventName: 'tokens',
  stripeCustomerId: 'cus_1',
  windowStart: 0,
  value: 5n,
  timestamp: 1,
  mode: 'delta',
  pushedFrom: 0n,
  pushedTo: 5n,
};
const retry = (reason: string): SendOutcome => ({ kind: 'retry', reason });

/** A delivery over a sink that answers `outcomes` in turn, and a ledger that keeps every write in order. */
function deliveryWith(outcomes: SendOutcome[], opts: { maxAttempts?: number; onSend?: () => void; ledgerDown?: boolean } = {}) {
  const events: string[] = [];
  const sleeps: number[] = [];
  const ledger = {
    record: async (_p: PlannedPush, status: PushStatus, o: { attempts: number; lastError?: string }) => {
      if (opts.ledgerDown) throw new Error('ClickHouse unreachable');
      events.push(`ledger ${status} after ${o.attempts}${o.lastError ? ` (${o.lastError})` : ''}`);
    },
  };
  const sink = {
    shadow: false,
    send: async () => {
      opts.onSend?.();
      const outcome = outcomes.shift()!;
      events.push(`send → ${outcome.kind}`);
      return outcome;
    },
    close: async () => undefined,
  };
  const delivery = createDelivery({
    pushes: ledger as unknown as PushStore,
    sink,
    clock: () => 1_000,
    logger: silentLogger(),
    rateLimit: async () => 0,
    maxAttempts: opts.maxAttempts ?? 5,
    maxInFlight: 10,
    sleep: async (ms) => {
      sleeps.push(ms);
      events.push('backoff');
    },
    active: () => true,
    onUncertain: () => events.push('uncertain'),
  });
  return { delivery, events, sleeps };
}

const KEY = streamKey(push);

describe('push delivery (the retry loop under the pusher)', () => {
  it('retries a retry outcome, writing each attempt to the ledger before backing off, until delivered', async () => {
    const { delivery, events, sleeps } = deliveryWith([retry('503'), retry('429'), { kind: 'reported' }]);
    delivery.launch(push, 0, 0);
    await delivery.drain();
    expect(events).toEqual(['send → retry', 'ledger pending after 1 (503)', 'backoff', 'send → retry', 'ledger pending after 2 (429)', 'backoff', 'send → reported', 'ledger reported after 3']);
    // Full jitter below 250 ms, then below 500 ms.
    expect(sleeps[0]).toBeLessThan(250);
    expect(sleeps[1]).toBeLessThan(500);
    expect(delivery.busy(KEY)).toBe(false);
  });

  it('a final outcome is not retried', async () => {
    const { delivery, events } = deliveryWith([{ kind: 'failed', reason: 'StripeInvalidRequestError 400: bad' }]);
    delivery.launch(push, 0, 0);
    await delivery.drain();
    expect(events).toEqual(['send → failed', 'ledger failed after 1 (StripeInvalidRequestError 400: bad)']);
  });

  it('out of attempts, the push stays pending (with the calls made, counting earlier rounds) and its stream waits', async () => {
    const { delivery, events } = deliveryWith([retry('a'), retry('b'), retry('c')], { maxAttempts: 2 });
    delivery.launch(push, 0, 4);
    await delivery.drain();
    expect(events).toEqual(['send → retry', 'ledger pending after 5 (a)', 'backoff', 'send → retry', 'ledger pending after 6 (b)']);
    expect(delivery.busy(KEY)).toBe(true);
  });

  it('once stopped, an in-flight push ends after its current attempt, still pending', async () => {
    let stop: Promise<void> | undefined;
    const { delivery, events } = deliveryWith([retry('503'), { kind: 'reported' }], { onSend: () => void (stop ??= delivery.stop()) });
    delivery.launch(push, 0, 0);
    await delivery.drain();
    await stop;
    expect(events).toEqual(['send → retry', 'ledger pending after 1 (503)']);
  });

  it('a ledger write that fails stops the delivery (no further call) and makes the pusher rescan', async () => {
    const { delivery, events } = deliveryWith([retry('503'), { kind: 'reported' }], { ledgerDown: true });
    delivery.launch(push, 0, 0);
    await delivery.drain();
    expect(events).toEqual(['send → retry', 'uncertain']);
    expect(delivery.inFlightCount()).toBe(0);
  });
});
