import { Option } from 'commander';
import { stringify } from 'csv-stringify/sync';

/** Output formats shared by the listing commands: `table` for people, `json` and `csv` for programs. */
export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The `--format` option every listing command takes, with the same choices and default. */
export function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(OUTPUT_FORMATS).default('table');
}

export function renderRows(rows: readonly Record<string, unknown>[], columns: readonly string[], format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows, jsonValue) + '\n';
  if (format === 'csv') return renderCsv(rows, columns);
  return renderTable(rows, columns);
}

/** RFC 4180 through csv-stringify: a header row, cells quoted when they hold separators, quotes or line breaks. */
export function renderCsv(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  return stringify(
    rows.map((r) => columns.map((c) => csvCell(r[c]))),
    { header: true, columns: [...columns], record_delimiter: 'unix' },
  );
}

/** Aligned columns under a header; a cell's line breaks and tabs are shown escaped so every row stays one line. */
export function renderTable(rows: readonly Record<string, unknown>[], columns: readonly string[]): string {
  const cells = rows.map((r) => columns.map((c) => tableCell(r[c])));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: readonly string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return v.toISOString();
  return typeof v === 'object' ? JSON.stringify(v, jsonValue) : String(v);
}

/** A spreadsheet would run a cell starting with = + - @ as a formula: prefix it (numbers excepted). */
function csvCell(v: unknown): string {
  const s = text(v);
  return /^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s) ? `'${s}` : s;
}

function tableCell(v: unknown): string {
  return text(v).replace(/[\r\n\t]/g, (c) => ({ '\r': '\\r', '\n': '\\n', '\t': '\\t' })[c]!);
}

function jsonValue(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}
