import type { Kafka, Producer } from 'kafkajs';
import { createDecoder, createSingleObjectEncoder } from '../../src/adapters/avro/codec';
import { createLedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import { parseMeterCatalog } from '../../src/domain/meters';
import { partitionKey, type UsageEvent } from '../../src/domain/usage-event';
import type { IngestDeps } from '../../src/pipeline/ingest-batch';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import type { LedgerStore } from '../../src/ports/ledger';
import { createLogger, silentLogger } from '../../src/runtime/logger';
import { count, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS, type TestBroker } from '../helpers/kafka';
import { waitFor } from '../helpers/wait';

/**
 * Units are pipelined across fetches: the source returns from kafkajs' eachBatch once a fetch is
 * decided, so kafkajs fetches the next one while the first is being written. These tests hold a
 * unit's ledger insert open on a real Kafka broker and show (1) the next fetch is decided and
 * written meanwhile, (2) a rebalance does not hand the partitions to another worker before the
 * held writes land (the group fence), and (3) an insert that fails after its fetch was accepted is
 * read again (the rewind): nothing lost, nothing stored twice.
 */
const TOPIC = 'usage.handoff';
const NOW = Date.now();
const parsed = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'sum' }] });
if (!parsed.ok) throw new Error('bad test catalog');
const meters = parsed.catalog;
const logger = () => (process.env.TEST_LOGS ? createLogger({ level: 'debug' }) : silentLogger());

let seq = 0;
const events = (tenant: string, n: number): UsageEvent[] =>
  Array.from({ length: n }, () => {
    seq += 1;
    return { id: `h${seq}`, tenant, customer: `c${seq % 7}`, meter: 'api_calls', value: '1', timestamp: NOW - 60_000, properties: {}, source: null };
  });

/** A gate an insert waits at until the test opens it. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let reached = false;
  return { opened, open, get reached() { return reached; }, reach: () => void (reached = true) };
}

describe('ingest units pipelined across fetches (real Kafka)', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let ch: TestClickHouse;
  let rawProducer: Producer;
  const encoder = createSingleObjectEncoder();
  const workers: IngestWorker[] = [];
  /**
   * All of `evs` in one record batch of one partition, so one fetch sees all of them or none (the
   * publisher spreads them over partitions, and under load a fetch can see some partitions' share
   * before the others': the events would then form two units).
   */
  const publishToOnePartition = async (evs: UsageEvent[], partition: number) => {
    await rawProducer.send({ topic: TOPIC, messages: await Promise.all(evs.map(async (e) => ({ key: partitionKey(e), value: await encoder.encode(e), partition }))) });
  };

  const ledgerRows = (tenant: string) => count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events WHERE tenant = {t:String}`, { t: tenant });
  const distinctRows = (tenant: string) => count(ch.client, `SELECT uniqExact(id) AS c FROM ${ch.database}.usage_events WHERE tenant = {t:String}`, { t: tenant });
  const dupes = (tenant: string) => count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL WHERE tenant = {t:String}`, { t: tenant });

  /** A worker whose ledger runs `around` for each insert of new events. */
  const startWorker = async (groupId: string, around: (tenants: Set<string>) => Promise<void>) => {
    const ledger = createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 });
    const wrapped: LedgerStore = {
      ...ledger,
      async insertNew(newEvents, ingestedAt) {
        await around(new Set(newEvents.map((e) => e.candidate.event.tenant)));
        return ledger.insertNew(newEvents, ingestedAt);
      },
    };
    const deps: IngestDeps = { decoder: createDecoder({}), meters: () => meters, ledger: wrapped, clock: Date.now, maxFutureSkewMs: 300_000 };
    const w = await startIngestWorker({ kafka, topic: TOPIC, groupId, deps, logger: logger(), consumer: TEST_CONSUMER_TIMINGS });
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    broker = await startTestBroker([{ name: TOPIC, partitions: 4 }], { kind: 'kafka' });
    kafka = kafkaFor(broker);
    ch = await testClickHouse('handoff');
    rawProducer = kafka.producer();
    await rawProducer.connect();
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    for (const w of workers) await w.stop().catch(() => undefined);
    await rawProducer?.disconnect();
    await ch?.close();
    await broker?.stop();
  });

  // Gates a test opened (or not: it failed before) are opened before its workers stop, which
  // drain every write first: a failed test then fails fast instead of in the hook's timeout.
  const gates: { open: () => void }[] = [];
  afterEach(async () => {
    for (const g of gates.splice(0)) g.open();
    for (const w of workers.splice(0)) await w.stop();
  });

  it('decides and writes the next fetch while the previous one is being written, and holds a rebalance until those writes land', async () => {
    const held = gate();
    gates.push(held);
    const insertsSeen: string[] = [];
    const around = async (tenants: Set<string>) => {
      insertsSeen.push(...tenants);
      if (tenants.has('t-held')) {
        held.reach();
        await held.opened;
      }
    };
    const a = await startWorker('handoff-rebalance', around);
    await waitFor('worker A owns the partitions', () => a.status().partitions.length === 4);

    // One unit holds every t-held event: with two held units (the most in flight), the next
    // fetch would rightly wait for one of them.
    await publishToOnePartition(events('t-held', 40), 0);
    await waitFor('the insert of t-held reached the gate', () => held.reached);
    // The fetch holding t-held was accepted: kafkajs fetched again, and the next unit is decided
    // and written while t-held's insert is still open.
    // In one batch too: spread over partitions, t-next could form two units, and the second
    // would rightly wait for t-held's commit (two units in flight at most).
    await publishToOnePartition(events('t-next', 40), 1);
    await waitFor('t-next inserted while t-held is held', () => insertsSeen.includes('t-next'), 15_000);
    expect(await ledgerRows('t-next')).toBe(40);
    expect(held.reached).toBe(true);

    // A second worker joins: the group rebalances, but A rejoins only once its writes landed, so
    // B is assigned nothing while they are held (B would re-read t-held, uncommitted, and store it again).
    // (A new member's start returns once its first join completed, i.e. once the rebalance did.)
    let bJoined = false;
    const bStarting = startWorker('handoff-rebalance', async () => undefined).then((w) => {
      bJoined = true;
      return w;
    });
    await new Promise((r) => setTimeout(r, 3 * TEST_CONSUMER_TIMINGS.heartbeatInterval + 1_500));
    expect(bJoined).toBe(false);
    expect(await ledgerRows('t-held')).toBe(0);

    held.open();
    const b = await bStarting;
    await waitFor('both workers assigned after the rebalance', () => a.status().partitions.length > 0 && b.status().partitions.length > 0, 30_000);
    await waitFor('t-held stored', async () => (await ledgerRows('t-held')) >= 40);
    // Anything re-read by B after the rebalance is recognised, never stored again.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await ledgerRows('t-held')).toBe(40);
    expect(await distinctRows('t-held')).toBe(40);
    expect(await ledgerRows('t-next')).toBe(40);
    expect(await dupes('t-held')).toBe(0);
  }, 90_000);

  it('given an insert fails after its fetch was accepted (kafkajs already fetched past it), then its messages are read again: every event stored once', async () => {
    let failures = 0;
    const fetchedPast = gate();
    gates.push(fetchedPast);
    const around = async (tenants: Set<string>) => {
      if (tenants.has('t-fail') && failures === 0) {
        failures += 1;
        // Fail only once the next fetch was accepted too: the failed unit's offsets are behind kafkajs' position.
        await fetchedPast.opened;
        throw new Error('injected: ClickHouse refused the insert');
      }
      if (tenants.has('t-after')) fetchedPast.open();
    };
    const a = await startWorker('handoff-rewind', around);
    await waitFor('worker owns the partitions', () => a.status().partitions.length === 4);
    // Each in one record batch of one partition, so each is one unit. (Spread over partitions,
    // t-fail could form two units under load; t-after would then be a third, which waits for the
    // first unit's commit — while that unit's insert waits for t-after's: the test would hang.)
    await publishToOnePartition(events('t-fail', 30), 0);
    await waitFor('the failing insert started', () => failures === 1);
    await publishToOnePartition(events('t-after', 30), 1);
    await waitFor('t-fail stored after the re-read', async () => (await ledgerRows('t-fail')) >= 30, 30_000);
    await waitFor('t-after stored', async () => (await ledgerRows('t-after')) >= 30, 30_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(failures).toBe(1);
    expect(await ledgerRows('t-fail')).toBe(30);
    expect(await distinctRows('t-fail')).toBe(30);
    expect(await ledgerRows('t-after')).toBe(30);
    expect(await distinctRows('t-after')).toBe(30);
    expect(await dupes('t-fail')).toBe(0);
  }, 90_000);
});
