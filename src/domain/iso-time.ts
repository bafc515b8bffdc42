/**
 * A full ISO-8601 date or date-time → epoch ms; undefined for anything else ("yesterday" or
 * "1700000000" are mistakes, not times). A date-time without a zone is read as UTC, like
 * everything else in meterline. Shared by `meterline query` and the HTTP usage API.
 */
export function parseIsoTime(v: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(v) || Number.isNaN(Date.parse(v))) return undefined;
  return Date.parse(/T|\s/.test(v) && !/(Z|[+-]\d{2}:?\d{2})$/.test(v) ? `${v.replace(' ', 'T')}Z` : v);
}
