import { parseDuration, parseMeterCatalog } from '../../src/domain/meters';

describe('meter definitions', () => {
  it('derives the push mode from the aggregation and hashes each definition', () => {
    const r = parseMeterCatalog({
      meters: [
        { name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '2h', stripe: { event_name: 'tokens' } },
        { name: 'seats', aggregation: 'unique_count', unique_property: 'user', window: 'day', stripe: { event_name: 'seats' } },
        { name: 'internal', aggregation: 'count' },
      ],
    });
    if (!r.ok) throw new Error(r.problems.join('\n'));
    expect(r.catalog.get('tokens')).toMatchObject({ allowedLatenessMs: 7_200_000, stripe: { eventName: 'tokens', mode: 'delta' } });
    expect(r.catalog.get('seats')).toMatchObject({ uniqueProperty: 'user', stripe: { mode: 'absolute' } });
    expect(r.catalog.get('internal')).toMatchObject({ window: 'hour', stripe: null });
    expect(r.catalog.get('tokens')!.definitionHash).toMatch(/^[0-9a-f]{16}$/);
    expect(r.catalog.get('tokens')!.definitionHash).not.toBe(r.catalog.get('internal')!.definitionHash);
  });

  it('reports every problem at once, with where it is', () => {
    const r = parseMeterCatalog({
      meters: [
        { name: 'a b', aggregation: 'sum' },
        { name: 'u', aggregation: 'unique_count' },
        { name: 'm', aggregation: 'max', stripe: { event_name: 'm', mode: 'delta' } },
        { name: 'x', aggregation: 'median' },
        { name: 'l', aggregation: 'sum', allowed_lateness: 'soon' },
      ],
    });
    expect(r.ok).toBe(false);
    const problems = r.ok ? [] : r.problems;
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^meters\[0\]\.name/),
        expect.stringMatching(/^meters\[1\]\.unique_property: required/),
        expect.stringMatching(/^meters\[2\]\.stripe\.mode: a max meter cannot be pushed as deltas/),
        expect.stringMatching(/^meters\[3\]\.aggregation/),
        expect.stringMatching(/^meters\[4\]\.allowed_lateness/),
      ]),
    );
  });

  it('parses durations', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration('-1h')).toBeUndefined();
  });
});
