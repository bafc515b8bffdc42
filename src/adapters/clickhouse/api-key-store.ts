import type { ClickHouseClient } from '@clickhouse/client';
import { dateTime64 } from './format';
import { assertIdentifier } from './migrations';

export interface ApiKeyRecord {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly keySha256: string;
  /** ISO-8601. */
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

/** What `meterline keys list` shows: never the hash. */
export type ApiKeyListing = Omit<ApiKeyRecord, 'keySha256'>;

export interface ApiKeyStore {
  create(record: { id: string; tenant: string; name: string; keySha256: string; createdAt: number }): Promise<void>;
  list(): Promise<ApiKeyListing[]>;
  /** false: no key with this id. A revoked key stays revoked (the first revocation time is kept). */
  revoke(id: string, at: number): Promise<boolean>;
  /** Every key with its hash, for the gateway's cache. */
  all(): Promise<ApiKeyRecord[]>;
}

interface Row {
  id: string;
  tenant: string;
  name: string;
  key_sha256: string;
  created_at: string;
  revoked_at: string | null;
}

export function createApiKeyStore(client: ClickHouseClient, database: string): ApiKeyStore {
  assertIdentifier(database);
  const table = `${database}.api_keys`;
  const read = async (where = '', params: Record<string, unknown> = {}): Promise<ApiKeyRecord[]> => {
    const rs = await client.query({
      query: `SELECT id, tenant, name, key_sha256, toUnixTimestamp64Milli(created_at) AS created_at,
                     if(isNull(revoked_at), NULL, toUnixTimestamp64Milli(assumeNotNull(revoked_at))) AS revoked_at
              FROM ${table} FINAL ${where} ORDER BY created_at, id`,
      query_params: params,
      format: 'JSONEachRow',
    });
    return (await rs.json<Row>()).map((r) => ({
      id: r.id,
      tenant: r.tenant,
      name: r.name,
      keySha256: r.key_sha256,
      createdAt: new Date(Number(r.created_at)).toISOString(),
      revokedAt: r.revoked_at === null ? null : new Date(Number(r.revoked_at)).toISOString(),
    }));
  };
  const insert = (r: ApiKeyRecord, version: number) =>
    client.insert({
      table,
      values: [{ id: r.id, tenant: r.tenant, name: r.name, key_sha256: r.keySha256, created_at: dateTime64(Date.parse(r.createdAt)), revoked_at: r.revokedAt === null ? null : dateTime64(Date.parse(r.revokedAt)), version }],
      format: 'JSONEachRow',
    });
  return {
    async create(r) {
      await insert({ id: r.id, tenant: r.tenant, name: r.name, keySha256: r.keySha256, createdAt: new Date(r.createdAt).toISOString(), revokedAt: null }, 1);
    },
    async list() {
      return (await read()).map(({ keySha256: _hash, ...rest }) => rest);
    },
    async revoke(id, at) {
      const [current] = await read('WHERE id = {id:String}', { id });
      if (!current) return false;
      if (current.revokedAt !== null) return true;
      await insert({ ...current, revokedAt: new Date(at).toISOString() }, 2);
      return true;
    },
    all: () => read(),
  };
}
