/** Output formats shared by the reporting commands. */
export type OutputFormat = 'table' | 'json' | 'csv';

export function renderRows(rows: readonly Record<string, unknown>[], columns: readonly string[], format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(rows) + '\n';
  if (format === 'csv') return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\n') + '\n';
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: readonly string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n';
}

/** RFC 4180: quote cells with separators, quotes or line breaks; neutralise spreadsheet formulas. */
function csvCell(v: unknown): string {
  let s = String(v ?? '');
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
