import type { UsageAlert } from '../../src/adapters/alerts/alert-codec';
import type { AlertTopic } from '../../src/adapters/alerts/alert-topic';
import type { AlertRecord, AlertStatus, AlertStore } from '../../src/adapters/clickhouse/alert-store';
import type { PeriodTotalsReader } from '../../src/adapters/clickhouse/period-totals';
import { allotmentCatalog } from '../../src/domain/allotments';
import type { PeriodTotal } from '../../src/domain/alert-crossings';
import { createAlerter, type AlerterDeps } from '../../src/pipeline/alerter';
import { createChangeFeed } from '../../src/pipeline/change-feed';
import { createLogger } from '../../src/runtime/logger';

/** The alerter's ordering and settlement rules, over in-memory stand-ins for the ledger and the topic. */
const B = 1_000_000_000n;
const PERIOD = { periodStart: Date.UTC(2026, 10, 1), periodEnd: Date.UTC(2026, 11, 1) };
const NOW = Date.UTC(2026, 10, 20);
const allotments = allotmentCatalog([{ tenant: 'acme', meter: 'tokens', customer: null, limitUnits: 100n * B, thresholds: [50n * B, 100n * B] }]);

function harness(initialTotals: Record<string, bigint>) {
  const totals = new Map(Object.entries(initialTotals));
  const ledger = new Map<string, AlertRecord>();
  const log: string[] = [];
  const onTopic: string[] = [];
  const changed: { tenant: string; customer: string; meter: string; oldestWindowStart: number }[] = [];
  const alerts: AlertStore = {
    recordedIds: async () => new Set(ledger.keys()),
    record: async (list, status: AlertStatus) => {
      for (const a of list) {
        log.push(`${status} ${a.customer}@${a.thresholdUnits / B}`);
        ledger.set(a.alertId, { ...a, status, deliveryAttempts: 0 });
      }
    },
    list: async (status) => [...ledger.values()].filter((r) => r.status === status),
  };
  const topic: AlertTopic = {
    publish: async (list) => {
      for (const a of list) {
        log.push(`publish ${a.customer}@${a.thresholdUnits / B}`);
        onTopic.push(a.alertId);
      }
    },
    findPublished: async (ids) => new Set(onTopic.filter((id) => ids.has(id))),
    close: async () => undefined,
  };
  // What each read asked for (the scope as the stream store gets it), and the forgets.
  const reads: string[] = [];
  const totalsOf = (scope: readonly { customer: string }[] | undefined): PeriodTotal[] =>
    [...totals]
      .filter(([customer]) => !scope || scope.some((s) => s.customer === customer))
      .map(([customer, units]) => ({ tenant: 'acme', customer, meter: 'tokens', ...PERIOD, totalUnits: units * B }));
  const periodTotals: PeriodTotalsReader = {
    read: async (q) => {
      reads.push(q.scope ? `scoped ${q.scope.map((s) => `${s.customer}@${s.oldestWindowStart}`).join(',')} from ${q.fromTime}` : `all from ${q.fromTime}`);
      return totalsOf(q.scope);
    },
    forget: () => void reads.push('forget'),
  };
  const make = (faultPoint?: (p: string) => void, extra: Partial<AlerterDeps> = {}) =>
    createAlerter({
      allotments,
      changedStreams: async () => changed.splice(0),
      periodTotals,
      alerts,
      topic,
      deliveries: null,
      billingAnchorDay: 1,
      clock: () => NOW,
      logger: createLogger({ level: 'silent' }),
      faultPoint,
      ...extra,
    });
  return { totals, ledger, log, onTopic, changed, reads, totalsOf, make };
}

class Killed extends Error {}

describe('alerter', () => {
  it('records pending before publishing and published after, once per crossing', async () => {
    const h = harness({ c1: 60n, c2: 10n });
    const alerter = h.make();
    await alerter.startTerm();
    expect(h.log).toEqual(['pending c1@50', 'publish c1@50', 'published c1@50']);
    // Only changed streams are re-checked; a crossing already recorded is not raised again.
    h.totals.set('c1', 100n);
    h.totals.set('c2', 99n);
    h.changed.push({ tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW });
    await alerter.cycle();
    expect(h.log.slice(3)).toEqual(['pending c1@100', 'publish c1@100', 'published c1@100']);
    await alerter.cycle();
    expect(h.log).toHaveLength(6);
  });

  it('a crash after pending: the next term finds the alert absent from the topic and publishes it once', async () => {
    const h = harness({ c1: 60n });
    await expect(h.make((p) => { if (p === 'after_pending') throw new Killed(); }).startTerm()).rejects.toThrow(Killed);
    expect(h.onTopic).toHaveLength(0);
    await h.make().startTerm();
    expect(h.onTopic).toHaveLength(1);
    expect([...h.ledger.values()].map((r) => r.status)).toEqual(['published']);
  });

  it('a crash after publishing: the next term finds the alert on the topic and only records it as published', async () => {
    const h = harness({ c1: 60n });
    await expect(h.make((p) => { if (p === 'after_publish') throw new Killed(); }).startTerm()).rejects.toThrow(Killed);
    expect(h.onTopic).toHaveLength(1);
    await h.make().startTerm();
    expect(h.onTopic).toHaveLength(1);
    expect([...h.ledger.values()].map((r) => r.status)).toEqual(['published']);
  });

  it("checks its own worker's changes from the feed, reads only the other workers' from the record, and takes them back when a cycle fails", async () => {
    const h = harness({ c1: 10n, c2: 10n });
    const feed = createChangeFeed('worker-a');
    const exceptWriters: (string | undefined)[] = [];
    let failTotals = false;
    const alerter = h.make(undefined, {
      ownChanges: feed.subscribe(),
      changedStreams: async (_since, exceptWriter) => (exceptWriters.push(exceptWriter), h.changed.splice(0)),
      periodTotals: {
        read: async (q) => {
          if (failTotals) throw new Error('ClickHouse unavailable');
          return h.totalsOf(q.scope);
        },
        forget: () => undefined,
      },
    });
    await alerter.startTerm();
    // c1 crosses through this worker's own unit (only in the feed), c2 through another worker's (the record).
    h.totals.set('c1', 60n);
    h.totals.set('c2', 70n);
    feed.publish([{ key: 'acme\u0000c1\u0000tokens', tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW, newestWindowStart: NOW }]);
    h.changed.push({ tenant: 'acme', customer: 'c2', meter: 'tokens', oldestWindowStart: NOW });
    await alerter.cycle();
    expect(h.log).toEqual(['pending c1@50', 'pending c2@50', 'publish c1@50', 'publish c2@50', 'published c1@50', 'published c2@50']);
    expect(exceptWriters).toEqual(['worker-a']);
    // A cycle that fails after taking c1's change gives it back: the next one alerts.
    h.totals.set('c1', 100n);
    feed.publish([{ key: 'acme\u0000c1\u0000tokens', tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW, newestWindowStart: NOW }]);
    failTotals = true;
    await expect(alerter.cycle()).rejects.toThrow('ClickHouse unavailable');
    failTotals = false;
    await alerter.cycle();
    expect(h.log.slice(6)).toEqual(['pending c1@100', 'publish c1@100', 'published c1@100']);
  });

  it('reads every stream afresh at a term start, then each changed stream once, from its oldest changed window', async () => {
    const h = harness({ c1: 10n, c2: 10n });
    const alerter = h.make();
    await alerter.startTerm();
    expect(h.reads).toEqual(['forget', `all from ${NOW}`]);
    // c1 changed twice (a late event, then a fresh one): one entry, from the older window.
    h.changed.push(
      { tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW - 60_000 },
      { tenant: 'acme', customer: 'c2', meter: 'tokens', oldestWindowStart: NOW },
      { tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW - 7_200_000 },
      { tenant: 'acme', customer: 'c1', meter: 'tokens', oldestWindowStart: NOW },
    );
    await alerter.cycle();
    expect(h.reads.slice(2)).toEqual([`scoped c1@${NOW - 7_200_000},c2@${NOW} from ${NOW - 7_200_000}`]);
    // A new term forgets what the previous one kept.
    await h.make().startTerm();
    expect(h.reads.slice(3)).toEqual(['forget', `all from ${NOW}`]);
  });
});
