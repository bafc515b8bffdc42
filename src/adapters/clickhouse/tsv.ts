/**
 * Field encoders for ClickHouse's TabSeparated input format. A row is its fields joined by a tab
 * and ended by a newline, so a field must never contain a raw tab or newline; ClickHouse reads
 * the backslash escapes below back to the exact bytes. Pure and allocation-light: these run once
 * per column per event on the hot path.
 */

/** Characters a TSV field escapes (a raw `'` is fine in a plain field). */
const TSV_SPECIAL = /[\\\t\n\r\0\b\f]/;
const TSV_SPECIAL_ALL = /[\\\t\n\r\0\b\f]/g;
/** Inside a quoted string (a Map's keys and values), the quote is special too. */
const QUOTED_SPECIAL = /[\\'\t\n\r\0\b\f]/;
const QUOTED_SPECIAL_ALL = /[\\'\t\n\r\0\b\f]/g;

const ESCAPES: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  "'": "\\'",
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
};
const escapeChar = (c: string): string => ESCAPES[c]!;

/** A String column's value. */
export function tsvString(s: string): string {
  return TSV_SPECIAL.test(s) ? s.replace(TSV_SPECIAL_ALL, escapeChar) : s;
}

/** A Nullable(String) column's value: `\N` is NULL, so a literal `\N` is written `\\N`. */
export function tsvNullableString(s: string | null): string {
  return s === null ? '\\N' : tsvString(s);
}

/** A string quoted as ClickHouse reads it inside a composite value (Map, Array, Tuple). */
function quoted(s: string): string {
  return `'${QUOTED_SPECIAL.test(s) ? s.replace(QUOTED_SPECIAL_ALL, escapeChar) : s}'`;
}

/**
 * A Map(String, String) column's value: `{'k':'v',…}`. ClickHouse parses a composite field's
 * text with the quoted-string escapes only (no second TSV unescaping), and those escapes never
 * emit a raw tab or newline, so the text is TSV-safe as it is.
 */
export function tsvStringMap(m: Readonly<Record<string, string>>): string {
  let out = '{';
  let first = true;
  for (const k of Object.keys(m)) {
    out += `${first ? '' : ','}${quoted(k)}:${quoted(m[k]!)}`;
    first = false;
  }
  return `${out}}`;
}

const MS_PER_DAY = 86_400_000;
const TWO_DIGITS: readonly string[] = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS: readonly string[] = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** Dates within years 0000–9999, where 'YYYY-MM-DD' is the ISO text. */
const MAX_FOUR_DIGIT_YEAR_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
// Events of one unit share a few days: the date part is cached for the last day formatted.
let cachedDay = Number.NaN;
let cachedDayText = '';

/**
 * ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm' (UTC), for DateTime64(3, 'UTC'): the same text as
 * `new Date(ms).toISOString()` with a space, without a Date per value.
 */
export function tsvDateTime64(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > MAX_FOUR_DIGIT_YEAR_MS) {
    throw new RangeError(`time ${ms} ms is outside what DateTime64 text holds here (1970-01-01 … 9999-12-31, whole ms)`);
  }
  const day = Math.floor(ms / MS_PER_DAY);
  if (day !== cachedDay) {
    cachedDayText = `${new Date(day * MS_PER_DAY).toISOString().slice(0, 10)} `;
    cachedDay = day;
  }
  let rest = ms - day * MS_PER_DAY;
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const second = rest % 60;
  rest = (rest - second) / 60;
  const minute = rest % 60;
  const hour = (rest - minute) / 60;
  return `${cachedDayText}${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.${THREE_DIGITS[milli]}`;
}

// An insert stamps every row with one time: the last answer is kept.
let lastMicroMs = Number.NaN;
let lastMicroText = '';

/** ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm000', for DateTime64(6, 'UTC'). */
export function tsvDateTime64Micro(ms: number): string {
  if (ms !== lastMicroMs) {
    lastMicroText = `${tsvDateTime64(ms)}000`;
    lastMicroMs = ms;
  }
  return lastMicroText;
}

/** Characters of TSV text encoded into one buffer at a time (a few hundred rows). */
const CHUNK_CHARS = 1 << 16;

/**
 * Rows → the bytes of a TabSeparated body (every row ends in a newline). The text is turned into
 * bytes a chunk at a time, so a unit's body never exists as one JavaScript string: a row's
 * strings die young instead of being kept (and copied by the garbage collector) until the last
 * row is formatted.
 */
export function tsvRows<Row>(rows: readonly Row[], line: (row: Row) => string): Buffer {
  const chunks: Buffer[] = [];
  let text = '';
  for (const row of rows) {
    text += `${line(row)}\n`;
    if (text.length >= CHUNK_CHARS) {
      chunks.push(Buffer.from(text, 'utf8'));
      text = '';
    }
  }
  if (text.length > 0) chunks.push(Buffer.from(text, 'utf8'));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
