/**
 * Against a ClickHouse server, a query's parameters travel in the URL, and a server refuses a URL
 * over `http_max_uri_size` (1 MiB by default; the dev server enforces it). A read of every
 * stream lists its customers in the parameters of each piece, so a piece is bounded by the
 * bytes of its keys as well as by its streams (stream-scope.ts, KEY_BYTES_PER_READ): with long
 * customer ids, the pusher still reads every total.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { createLedgerStore, type NewEvent } from '../../src/adapters/clickhouse/ledger-store';
import { createStreamStore } from '../../src/adapters/clickhouse/stream-store';
import { candidateOf } from '../../src/domain/ingest-decision';
import { decideLateness } from '../../src/domain/lateness';
import { parseMeterCatalog } from '../../src/domain/meters';
import { devClickHouseDatabase } from '../helpers/dev-clickhouse';

const parsed = parseMeterCatalog({ meters: [{ name: 'tokens', aggregation: 'sum', window: 'hour', allowed_lateness: '1d', stripe: { event_name: 'tokens' } }] });
if (!parsed.ok) throw new Error(parsed.problems.join('; '));
const meter = parsed.catalog.get('tokens')!;
const CUSTOMERS = 3_000;
/** 3,000 ids of 400 bytes: 1.2 MB of keys, more than a URL may carry, in fewer streams than one piece holds. */
const customerId = (i: number) => `customer-${i}-`.padEnd(400, 'x');

describe('stream totals from a ClickHouse server, with long customer ids', () => {
  let served: Awaited<ReturnType<typeof devClickHouseDatabase>>;
  let client: ClickHouseClient;
  const database = 'long_keys';

  beforeAll(async () => {
    served = await devClickHouseDatabase(database);
    client = served.client;
    const at = Date.now() - 3_600_000;
    const events: NewEvent[] = Array.from({ length: CUSTOMERS }, (_, i) => {
      const event = { id: `lk${i}`, tenant: 'lk', customer: customerId(i), meter: 'tokens', value: `${(i % 7) + 1}`, timestamp: at, properties: {}, source: null };
      return { candidate: candidateOf({ topic: 'lk', partition: 0, offset: String(i) }, event, meter), lateness: decideLateness(at, meter, null) };
    });
    await createLedgerStore(client, database, { dedupeWindowMs: 35 * 86_400_000 }).insertNew(events, Date.now());
  }, 120_000);

  afterAll(async () => served?.close());

  it('reads every stream, unscoped (a full cycle) and scoped, in pieces the server accepts', async () => {
    const store = createStreamStore(client, database);
    const expected = Array.from({ length: CUSTOMERS }, (_, i) => `${customerId(i)}=${(i % 7) + 1}`).sort();
    const all = await store.deltaStreams(['tokens']);
    expect(all.map((s) => `${s.customer}=${s.total}`).sort()).toEqual(expected);
    const scope = all.map((s) => ({ tenant: s.tenant, customer: s.customer, meter: s.meter, oldestWindowStart: 0 }));
    const scoped = await store.deltaStreams(['tokens'], scope);
    expect(scoped.map((s) => `${s.customer}=${s.total}`).sort()).toEqual(expected);
  }, 120_000);
});
