import { parse } from 'csv-parse/sync';
import { renderRows } from '../../src/cli/format';

const COLUMNS = ['tenant', 'customer', 'reason', 'value'];
const TRICKY = [
  { tenant: 'acme', customer: 'c,1', reason: 'said "no", twice', value: '1.5' },
  { tenant: 'acme, inc.', customer: 'c2', reason: 'line one\nline two\r\nline three', value: '-2' },
  { tenant: 'x', customer: '=cmd|"/c calc"!A1', reason: '+1 more', value: 3n },
  { tenant: 'y', customer: '', reason: null, value: undefined },
];

describe('output formats', () => {
  it('csv is RFC 4180: what a CSV reader reads back is what was written', () => {
    const csv = renderRows(TRICKY, COLUMNS, 'csv');
    const back = parse(csv, { columns: true }) as Record<string, string>[];
    expect(back).toEqual([
      { tenant: 'acme', customer: 'c,1', reason: 'said "no", twice', value: '1.5' },
      { tenant: 'acme, inc.', customer: 'c2', reason: 'line one\nline two\r\nline three', value: '-2' },
      // A spreadsheet would run these as formulas: prefixed with a quote, like every careful exporter.
      { tenant: 'x', customer: `'=cmd|"/c calc"!A1`, reason: `'+1 more`, value: '3' },
      { tenant: 'y', customer: '', reason: '', value: '' },
    ]);
    expect(csv.split('\n')[0]).toBe('tenant,customer,reason,value');
    expect(csv).toContain('"said ""no"", twice"');
  });

  it('a table is aligned: every column starts at the same position on every line, one line per row', () => {
    const table = renderRows(TRICKY, COLUMNS, 'table');
    const lines = table.trimEnd().split('\n');
    expect(lines).toHaveLength(2 + TRICKY.length);
    const starts = COLUMNS.map((c) => lines[0]!.indexOf(c));
    expect(lines[1]).toMatch(/^-+( +-+)+$/);
    for (const [i, row] of [['acme', 'c,1', 'said "no", twice', '1.5'], ['acme, inc.', 'c2', 'line one\\nline two\\r\\nline three', '-2']].entries()) {
      for (const [j, cell] of row.entries()) expect(lines[2 + i]!.slice(starts[j]!, starts[j]! + cell.length)).toBe(cell);
    }
  });

  it('json is the rows themselves (big integers as text)', () => {
    expect(JSON.parse(renderRows(TRICKY.slice(2, 3), COLUMNS, 'json'))).toEqual([{ tenant: 'x', customer: '=cmd|"/c calc"!A1', reason: '+1 more', value: '3' }]);
  });
});
