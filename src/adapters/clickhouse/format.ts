/** Values as ClickHouse's text formats read them, independent of the server's time zone. */

const HOUR_MS = 3_600_000;
/** 'YYYY-MM-DD hh:' of the hour last formatted: events of one unit share a few hours. */
let cachedHour = NaN;
let cachedPrefix = '';

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));
const pad3 = (n: number) => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : String(n));

/**
 * ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm' (UTC), for DateTime64(3, 'UTC'). Called for every
 * ledger and counter row, so the date and hour are formatted once per hour, not per value.
 */
export function dateTime64(ms: number): string {
  const hour = Math.floor(ms / HOUR_MS);
  if (hour !== cachedHour) {
    // Outside 0000-9999 the ISO form has a sign and 6 year digits: not cached, formatted as ISO.
    const iso = new Date(hour * HOUR_MS).toISOString();
    if (iso.length !== 24) return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
    cachedHour = hour;
    cachedPrefix = `${iso.slice(0, 10)} ${iso.slice(11, 14)}`;
  }
  const inHour = ms - hour * HOUR_MS;
  const minutes = Math.floor(inHour / 60_000);
  const seconds = Math.floor((inHour % 60_000) / 1000);
  return `${cachedPrefix}${pad2(minutes)}:${pad2(seconds)}.${pad3(inHour % 1000)}`;
}

/** ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm000', for DateTime64(6, 'UTC'). */
export function dateTime64Micro(ms: number): string {
  return `${dateTime64(ms)}000`;
}
