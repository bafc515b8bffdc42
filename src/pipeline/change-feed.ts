import { streamKey } from '../domain/keys';
import type { DueStream } from '../domain/push-schedule';
import type { StreamChange } from '../domain/stream-changes';

/**
 * The streams this process's own ingest changed, handed in process to the readers beside it (the
 * pusher, the alerter). They read the durable change record (stream_changes) for the changes
 * other workers wrote only (`exceptWriter: writer`): the rows this worker wrote, read back each
 * second with a 30 s overlap, were most of what a push or alert cycle read at 20,000 events/s.
 *
 * Invariants:
 *  - a unit's changes are published once its rows are durable (the worker's onUnit), so a reader
 *    that takes them reads totals that hold them;
 *  - a reader takes changes before its cycle reads anything: a change published later is the
 *    next cycle's;
 *  - what a subscription holds is bounded by the streams changed between two takes (one entry
 *    per stream), however many units changed them.
 * Changes published before a subscription exists are not in it: every reader begins its term
 * with a read of every stream, after it subscribed.
 */
export interface ChangeFeed {
  /** The worker whose changes these are: the change record's `written_by` for them. */
  readonly writer: string;
  /** A stored unit's changes, for every subscription. */
  publish(changes: readonly StreamChange[]): void;
  /** A reader of the changes published from now on (of `meters` only, when given). */
  subscribe(opts?: { meters?: readonly string[] }): ChangeSubscription;
}

export interface ChangeSubscription {
  readonly writer: string;
  /**
   * Every stream changed since the last take: its oldest window changed, and the newest window of
   * the latest change (as the change record's read gives them). Empties the subscription.
   */
  take(): DueStream[];
  /** Gives back what a reader took and could not act on: taken again by the next take. */
  restore(streams: readonly DueStream[]): void;
  /** A mark of everything published so far, taken right before a read of totals begins. */
  mark(): number;
  /**
   * A read begun after `mark` has read `streams` afresh, each from `freshFrom(stream)` on: the
   * changes of those streams published before the mark, in those windows, are covered and dropped.
   * (After a backlog, cycles serve the streams deferred earlier and take nothing; what the feed
   * gathered meanwhile was mostly read by those very cycles, and taken whole it was every stream
   * planned once more for nothing: BENCHMARKS.md, fifteenth session.) A change published after
   * the mark, or in an older window, stays.
   */
  covered(streams: readonly DueStream[], mark: number, freshFrom: (stream: DueStream) => number): void;
}

/** A stream due a look, as a subscription merges it (mutable until taken: never after). */
interface Pending {
  readonly tenant: string;
  readonly customer: string;
  readonly meter: string;
  oldestWindowStart: number;
  newestWindowStart?: number;
  /** The publish that changed it last (see mark). */
  published: number;
}

export function createChangeFeed(writer: string): ChangeFeed {
  /** Per subscription, what it has not taken yet, by stream key. */
  const subscriptions = new Set<{ due: Map<string, Pending>; readonly meters: ReadonlySet<string> | null }>();
  /** Publishes so far: a unit's rows are durable before its publish, so a read begun after publish n sees them. */
  let published = 0;
  return {
    writer,
    publish(changes) {
      published += 1;
      if (subscriptions.size === 0) return;
      for (const c of changes) {
        for (const sub of subscriptions) {
          if (sub.meters && !sub.meters.has(c.meter)) continue;
          // Merged in place, by the key the unit built (its hash computed once): a unit of 25,000
          // events changes ~20,000 streams, and a new object (or key) per stream and unit costs
          // the event loop more than the durable record's read it replaces.
          const known = sub.due.get(c.key);
          if (!known) {
            sub.due.set(c.key, { tenant: c.tenant, customer: c.customer, meter: c.meter, oldestWindowStart: c.oldestWindowStart, newestWindowStart: c.newestWindowStart, published });
          } else {
            known.oldestWindowStart = Math.min(known.oldestWindowStart, c.oldestWindowStart);
            known.newestWindowStart = c.newestWindowStart;
            known.published = published;
          }
        }
      }
    },
    subscribe(opts = {}) {
      const sub = { due: new Map<string, Pending>(), meters: opts.meters ? new Set(opts.meters) : null };
      subscriptions.add(sub);
      return {
        writer,
        take() {
          // The taken entries are never touched again: the next publish fills a new map.
          const taken: DueStream[] = [...sub.due.values()].map(({ published: _, ...stream }) => stream);
          sub.due = new Map();
          return taken;
        },
        restore(streams) {
          for (const s of streams) {
            const key = streamKey(s);
            const known = sub.due.get(key);
            // Published again since it was taken: that newest window is the latest.
            if (known) known.oldestWindowStart = Math.min(known.oldestWindowStart, s.oldestWindowStart);
            else sub.due.set(key, { ...s, published: 0 });
          }
        },
        mark: () => published,
        covered(streams, mark, freshFrom) {
          for (const s of streams) {
            const key = streamKey(s);
            const known = sub.due.get(key);
            if (known && known.published <= mark && known.oldestWindowStart >= freshFrom(s)) sub.due.delete(key);
          }
        },
      };
    },
  };
}
