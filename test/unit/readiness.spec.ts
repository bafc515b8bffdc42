import { decideReadiness, initialProgress, observeBatch, observeLag, partitionLag, stalledPartitions, type ReadinessInput } from '../../src/runtime/readiness';

const STALL = 60_000;
const healthy: ReadinessInput = { kafkaReachable: true, clickhouseReachable: true, consuming: true, assignedPartitions: 4, stalled: [] };
const lags = (entries: [number, number][]) => new Map(entries);

describe('readiness: ready only when connected, assigned and consuming', () => {
  it('is ready when Kafka and ClickHouse answer, partitions are owned and nothing is stalled', () => {
    expect(decideReadiness(healthy)).toEqual({ ready: true, reasons: [] });
  });

  it.each([
    [{ kafkaReachable: false }, 'kafka unreachable'],
    [{ clickhouseReachable: false }, 'clickhouse unreachable'],
    [{ assignedPartitions: 0 }, 'no partitions assigned'],
    [{ consuming: false }, 'consumer not running'],
    [{ stalled: [1, 3] }, 'consumption stalled on partition(s) 1, 3'],
  ] as [Partial<ReadinessInput>, string][])('is not ready when %j, and says why', (change, reason) => {
    expect(decideReadiness({ ...healthy, ...change })).toEqual({ ready: false, reasons: [reason] });
  });

  it('lists every reason at once', () => {
    expect(decideReadiness({ ...healthy, kafkaReachable: false, clickhouseReachable: false }).reasons).toEqual(['kafka unreachable', 'clickhouse unreachable']);
  });
});

describe('stall detection: lag waiting and no progress for stallMs', () => {
  it('given a consumer that stopped while producers go on, when lag only grows for stallMs, then its partition is stalled', () => {
    let s = observeLag(initialProgress(), lags([[0, 10]]), 0);
    s = observeLag(s, lags([[0, 50]]), 30_000);
    expect(stalledPartitions(s, 59_999, STALL)).toEqual([]);
    s = observeLag(s, lags([[0, 90]]), 60_000);
    expect(stalledPartitions(s, 60_000, STALL)).toEqual([0]);
  });

  it('given lag that does not move at all, then the partition is stalled after stallMs', () => {
    let s = observeLag(initialProgress(), lags([[2, 5]]), 0);
    s = observeLag(s, lags([[2, 5]]), 61_000);
    expect(stalledPartitions(s, 61_000, STALL)).toEqual([2]);
  });

  it('a committed batch is progress, even while lag grows (behind, not stalled: the lag alert covers that)', () => {
    let s = observeLag(initialProgress(), lags([[0, 10]]), 0);
    s = observeBatch(s, 0, 500, 50_000);
    s = observeLag(s, lags([[0, 900]]), 100_000);
    expect(stalledPartitions(s, 100_000, STALL)).toEqual([]);
    expect(stalledPartitions(s, 110_000, STALL)).toEqual([0]);
  });

  it('lag going down is progress', () => {
    let s = observeLag(initialProgress(), lags([[0, 100]]), 0);
    s = observeLag(s, lags([[0, 99]]), 59_000);
    expect(stalledPartitions(s, 100_000, STALL)).toEqual([]);
  });

  it('an idle partition (lag 0) is never stalled, however long it stays quiet', () => {
    let s = observeLag(initialProgress(), lags([[0, 0]]), 0);
    s = observeLag(s, lags([[0, 0]]), 10 * STALL);
    expect(stalledPartitions(s, 10 * STALL, STALL)).toEqual([]);
  });

  it('only one stuck partition among moving ones is named', () => {
    let s = observeLag(initialProgress(), lags([[0, 5], [1, 5]]), 0);
    s = observeBatch(s, 0, 0, 40_000);
    s = observeLag(s, lags([[0, 0], [1, 7]]), 70_000);
    expect(stalledPartitions(s, 70_000, STALL)).toEqual([1]);
  });

  it('a newly assigned partition gets a full stallMs before it can be stalled; a revoked one is forgotten', () => {
    let s = observeLag(initialProgress(), lags([[0, 5]]), 0);
    s = observeLag(s, lags([[1, 5]]), 100_000);
    expect([...s.keys()]).toEqual([1]);
    expect(stalledPartitions(s, 100_000, STALL)).toEqual([]);
    expect(stalledPartitions(s, 160_000, STALL)).toEqual([1]);
  });
});

describe('partitionLag', () => {
  it('is the end minus the committed offset (the next one to read)', () => {
    expect(partitionLag('120', '0', '100')).toBe(20);
  });
  it('counts from the partition start when the group never committed', () => {
    expect(partitionLag('120', '20', null)).toBe(100);
  });
  it('is never negative', () => {
    expect(partitionLag('5', '0', '7')).toBe(0);
  });
});
