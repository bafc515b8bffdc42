import { dateTime64, dateTime64Micro } from '../../src/adapters/clickhouse/format';
import { seededRandom } from '../../src/domain/sample';

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

describe('ClickHouse DateTime64 text', () => {
  it('formats exactly like the ISO form, whatever the order of the values (its hour cache never leaks)', () => {
    const rnd = seededRandom(7);
    const samples = [0, 1, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, Date.UTC(2026, 10, 22, 23, 59, 59, 999), Date.UTC(2024, 1, 29, 12, 0, 0, 5), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
    for (let i = 0; i < 20_000; i += 1) samples.push(Math.floor(rnd() * Date.UTC(2100, 0, 1)));
    // Runs of one hour too, as a unit's events come.
    const base = Date.UTC(2026, 10, 22, 10);
    for (let i = 0; i < 5_000; i += 1) samples.push(base + Math.floor(rnd() * 2 * 3_600_000));
    for (const ms of samples) expect(dateTime64(ms)).toBe(iso(ms));
  });

  it('keeps years outside 0000-9999 correct (uncached ISO form)', () => {
    const far = Date.UTC(10_000, 0, 1, 1, 2, 3, 4);
    expect(dateTime64(far)).toBe(iso(far));
    expect(dateTime64(-1)).toBe(iso(-1));
  });

  it('adds microseconds as zeros for DateTime64(6)', () => {
    expect(dateTime64Micro(Date.UTC(2026, 10, 22, 10, 0, 0, 123))).toBe('2026-11-22 10:00:00.123000');
  });
});
