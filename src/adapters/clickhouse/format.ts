/** Values as ClickHouse's text formats read them, independent of the server's time zone. */

/** ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm' (UTC), for DateTime64(3, 'UTC'). */
export function dateTime64(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** ms since epoch → 'YYYY-MM-DD hh:mm:ss.mmm000', for DateTime64(6, 'UTC'). */
export function dateTime64Micro(ms: number): string {
  return `${dateTime64(ms)}000`;
}
