import { parseAllotments } from '../../src/domain/allotments';

const METERS = new Set(['tokens', 'api_calls']);

describe('allotments file', () => {
  it('reads limits and thresholds exactly, and a customer allotment overrides the meter-wide one', () => {
    const r = parseAllotments(
      {
        allotments: [
          { tenant: 'acme', meter: 'tokens', limit: '1000.5', thresholds: [100, '80'] },
          { tenant: 'acme', meter: 'tokens', customer: 'big', limit: 5000, thresholds: ['33.333333333'] },
          { tenant: 'acme', meter: 'api_calls', limit: '12345678901234567890' },
        ],
      },
      METERS,
    );
    if (!r.ok) throw new Error(r.problems.join('\n'));
    const c = r.catalog;
    expect(c.meters).toEqual(['api_calls', 'tokens']);
    expect(c.allotmentFor('acme', 'small', 'tokens')).toMatchObject({ customer: null, limitUnits: 1_000_500_000_000n, thresholds: [80_000_000_000n, 100_000_000_000n] });
    expect(c.allotmentFor('acme', 'big', 'tokens')).toMatchObject({ customer: 'big', limitUnits: 5_000_000_000_000n, thresholds: [33_333_333_333n] });
    // Default thresholds: 80 % and 100 %; a limit beyond 2^53 stays exact as a string.
    expect(c.allotmentFor('acme', 'x', 'api_calls')).toMatchObject({ limitUnits: 12345678901234567890_000_000_000n, thresholds: [80_000_000_000n, 100_000_000_000n] });
    expect(c.allotmentFor('other-tenant', 'big', 'tokens')).toBeUndefined();
    expect(c.allotmentFor('acme', 'big', 'unwatched')).toBeUndefined();
  });

  it.each([
    [{}, '.allotments: '],
    [{ allotments: [], extra: 1 }, 'Unrecognized key'],
    [{ allotments: [{ meter: 'tokens', limit: 10 }] }, 'allotments[0].tenant: '],
    [{ allotments: [{ tenant: 'acme', meter: 'nope', limit: 10 }] }, 'allotments[0].meter: unknown meter "nope" (not in the meters file)'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 0 }] }, 'allotments[0].limit: must be greater than 0'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 'lots' }] }, 'allotments[0].limit: value is not a decimal number'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 1e20 }] }, 'allotments[0].limit: is too large to be exact as a number'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: '1.0000000001' }] }, 'allotments[0].limit: value has more than 9 decimal places'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 10, thresholds: [] }] }, 'allotments[0].thresholds: must list at least one percentage'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 10, thresholds: [0] }] }, 'allotments[0].thresholds[0]: must be a percentage above 0 and at most 1000'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 10, thresholds: [80, 1001] }] }, 'allotments[0].thresholds[1]: must be a percentage above 0 and at most 1000'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 10, thresholds: [80, '80.0'] }] }, 'allotments[0].thresholds[1]: duplicate threshold 80'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', limit: 10, period: 'week' }] }, 'allotments[0]: Unrecognized key'],
    [{ allotments: [{ tenant: 'acme', meter: 'tokens', customer: '', limit: 10 }] }, 'allotments[0].customer: must not be empty'],
    [
      { allotments: [{ tenant: 'acme', meter: 'tokens', customer: 'c', limit: 10 }, { tenant: 'acme', meter: 'tokens', customer: 'c', limit: 20 }] },
      'allotments[1]: a second allotment for tenant "acme", meter "tokens", customer "c"',
    ],
  ])('rejects %j with a clear reason', (doc, expected) => {
    const r = parseAllotments(doc, METERS);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems.join('\n')).toContain(expected);
  });

  it('reports every problem at once, with where it is', () => {
    const r = parseAllotments(
      { allotments: [{ tenant: 'acme', meter: 'nope', limit: -1 }, { tenant: 'acme', meter: 'tokens', limit: 5, thresholds: ['x'] }] },
      METERS,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toEqual([
      'allotments[0].meter: unknown meter "nope" (not in the meters file)',
      'allotments[0].limit: must be greater than 0',
      expect.stringContaining('allotments[1].thresholds[0]: value is not a decimal number'),
    ]);
  });
});
