/**
 * A database, table or projection name written into SQL text (identifiers cannot be query
 * parameters): only plain identifiers pass. Its own module so the schema files can use it
 * without importing migrations.ts, which imports them.
 */
export function assertIdentifier(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new Error(`invalid ClickHouse identifier ${JSON.stringify(name)}`);
}
