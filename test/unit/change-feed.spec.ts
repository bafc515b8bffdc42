import { streamKey } from '../../src/domain/keys';
import type { StreamChange } from '../../src/domain/stream-changes';
import { createChangeFeed } from '../../src/pipeline/change-feed';

/** The in-process half of the change record: what a pusher or alerter takes from its own worker's units. */
const due = (customer: string, oldest: number, newest = oldest, meter = 'tokens') => ({ tenant: 't', customer, meter, oldestWindowStart: oldest, newestWindowStart: newest });
/** A unit's change of that stream, as streamChanges gives it (with its key). */
const change = (customer: string, oldest: number, newest = oldest, meter = 'tokens'): StreamChange => {
  const d = due(customer, oldest, newest, meter);
  return { key: streamKey(d), ...d };
};

describe('change feed', () => {
  it('gives each subscription every change published since its last take, one entry per stream', () => {
    const feed = createChangeFeed('worker-a');
    const pusher = feed.subscribe();
    const alerter = feed.subscribe();
    feed.publish([change('c1', 3_000), change('c2', 5_000)]);
    // A later unit changed c1 again, in an older window (a late event) and a newer one.
    feed.publish([change('c1', 1_000, 7_000)]);
    expect(pusher.writer).toBe('worker-a');
    expect(pusher.take()).toEqual([
      // The oldest window either unit changed; the newest window of the latest change.
      due('c1', 1_000, 7_000),
      due('c2', 5_000),
    ]);
    expect(pusher.take()).toEqual([]);
    // Another subscription is not emptied by the first one's take.
    expect(alerter.take().map((s) => s.customer)).toEqual(['c1', 'c2']);
  });

  it('misses what was published before it subscribed (a reader begins its term with a read of every stream)', () => {
    const feed = createChangeFeed('w');
    feed.publish([change('before', 1_000)]);
    const late = feed.subscribe();
    feed.publish([change('after', 2_000)]);
    expect(late.take().map((s) => s.customer)).toEqual(['after']);
  });

  it('takes back what a failed reader took, keeping the newest window of anything published meanwhile', () => {
    const feed = createChangeFeed('w');
    const sub = feed.subscribe();
    feed.publish([change('c1', 5_000, 6_000), change('c2', 5_000)]);
    const taken = sub.take();
    feed.publish([change('c1', 8_000, 9_000)]);
    sub.restore(taken);
    expect(sub.take()).toEqual([due('c1', 5_000, 9_000), due('c2', 5_000)]);
  });

  it('holds one entry per stream however many units change it', () => {
    const feed = createChangeFeed('w');
    const sub = feed.subscribe();
    for (let unit = 0; unit < 1_000; unit += 1) feed.publish([change('c1', unit), change('c2', unit)]);
    const taken = sub.take();
    expect(taken).toHaveLength(2);
    expect(taken[0]).toEqual(due('c1', 0, 999));
  });

  it('holds only the meters a subscription asked for', () => {
    const feed = createChangeFeed('w');
    const alerter = feed.subscribe({ meters: ['calls'] });
    feed.publish([change('c1', 1_000), change('c1', 1_000, 1_000, 'calls')]);
    expect(alerter.take()).toEqual([due('c1', 1_000, 1_000, 'calls')]);
  });

  it('drops the changes a read begun after them covered, and keeps those published later or in older windows', () => {
    const feed = createChangeFeed('w');
    const sub = feed.subscribe();
    feed.publish([change('read', 5_000), change('older', 2_000), change('unread', 5_000), change('again', 5_000)]);
    const readBegins = sub.mark();
    // Published while the read runs: it may not be in what the read saw.
    feed.publish([change('again', 6_000)]);
    // The read covered each stream from the window it was due from on.
    sub.covered([due('read', 4_000), due('older', 3_000), due('again', 5_000)], readBegins, (s) => s.oldestWindowStart);
    expect(sub.take()).toEqual([due('older', 2_000), due('unread', 5_000), due('again', 5_000, 6_000)]);
  });

  it('counts as covered a change in any window the read read afresh, older than the stream was due from', () => {
    const feed = createChangeFeed('w');
    const sub = feed.subscribe();
    feed.publish([change('recent', 3_000), change('backfill', 1_000)]);
    // The read covered every window from 2,000 on (its recent windows), and each stream from 4,000.
    sub.covered([due('recent', 4_000), due('backfill', 4_000)], sub.mark(), (s) => Math.min(s.oldestWindowStart, 2_000));
    expect(sub.take()).toEqual([due('backfill', 1_000)]);
  });

  it('drops a change a reader took back once a later read covered it', () => {
    const feed = createChangeFeed('w');
    const sub = feed.subscribe();
    feed.publish([change('c1', 5_000)]);
    sub.restore(sub.take());
    sub.covered([due('c1', 5_000)], sub.mark(), (s) => s.oldestWindowStart);
    expect(sub.take()).toEqual([]);
  });
});
