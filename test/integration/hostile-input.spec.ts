/**
 * Hostile input through the real consumer: a seeded fuzz publishes a few thousand hostile
 * messages of every category (raw bytes, bypassing the encoder) interleaved with valid events,
 * copies and conflicting copies, to a real (dev) broker; the real ingest worker stores them in
 * a real (embedded) ClickHouse. Every hostile message must end as exactly one rejected_events row
 * and one DLQ record with its reason; every valid event must be counted exactly; the worker must
 * keep consuming. Seeded: HOSTILE_SEED=<n> npx jest test/integration/hostile-input.spec.ts --selectProjects integration
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { Kafka, Producer } from 'kafkajs';
import { createDecoder } from '../../src/adapters/avro/codec';
import { avroTypeOptions, usageEventSchemas } from '../../src/adapters/avro/schemas';
import { createWatermarkStore } from '../../src/adapters/clickhouse/watermark-store';
import { createLedgerStore } from '../../src/adapters/clickhouse/ledger-store';
import type { TestBroker } from '../helpers/kafka';
import { createDeadLetterSink, DLQ_HEADERS, type DeadLetterSink } from '../../src/adapters/kafka/dlq';
import { formatDecimal } from '../../src/domain/decimal';
import { parseMeterCatalog } from '../../src/domain/meters';
import { partitionKey } from '../../src/domain/usage-event';
import { startIngestWorker, type IngestWorker } from '../../src/pipeline/ingest-worker';
import { silentLogger } from '../../src/runtime/logger';
import { start as startRegistry, type FakeSchemaRegistry } from '../fakes/schema-registry';
import { count, rows, testClickHouse, type TestClickHouse } from '../helpers/clickhouse';
import { BROKER_BUILD_TIMEOUT_MS, kafkaFor, startTestBroker, TEST_CONSUMER_TIMINGS } from '../helpers/kafka';
import {
  CATEGORIES,
  CATEGORY_NAMES,
  Rng,
  confluent,
  decimalBytes,
  encodeBodyV2,
  fuzzSeed,
  singleObject,
  units,
  type HostileContext,
  type HostileMessage,
  type RawEvent,
} from '../helpers/hostile-input';
import { waitFor } from '../helpers/wait';

const TOPIC = 'usage.events';
const DLQ = 'usage.events.dlq';
const PROBE = 'size.probe';
const PARTITIONS = 4;
const SEED = fuzzSeed(0x686f7374);
const HOSTILE_PER_CATEGORY = Number(process.env.HOSTILE_PER_CATEGORY ?? 110);
const HUGE_IDS = 3;
const VALID = 1000;
const NOW = Date.now();

interface Planned {
  readonly partition: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly hostile?: HostileMessage;
}

describe('hostile input through the real ingest worker', () => {
  let broker: TestBroker;
  let kafka: Kafka;
  let ch: TestClickHouse;
  let registryFake: FakeSchemaRegistry;
  let producer: Producer;
  let deadLetters: DeadLetterSink;
  let worker: IngestWorker;

  beforeAll(async () => {
    process.stdout.write(`hostile-input (integration): seed ${SEED} (override with HOSTILE_SEED)\n`);
    broker = await startTestBroker([
      { name: TOPIC, partitions: PARTITIONS },
      { name: DLQ, partitions: PARTITIONS },
      { name: PROBE, partitions: 1 },
    ]);
    kafka = kafkaFor(broker);
    ch = await testClickHouse('hostile');
    registryFake = await startRegistry();
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    deadLetters = await createDeadLetterSink(kafka, DLQ);
  }, BROKER_BUILD_TIMEOUT_MS);

  afterAll(async () => {
    await worker?.stop();
    await producer?.disconnect();
    await deadLetters?.close();
    await registryFake?.close();
    await ch?.close();
    await broker?.stop();
  });

  /** The largest id (≤ 1 MiB) whose message the broker accepts: its message size limit decides. */
  async function largestIdThatFits(ctx: Omit<HostileContext, 'hugeIdChars'>): Promise<number> {
    for (const chars of [1024 * 1024, 1_000_000 - 200, 900_000, 512 * 1024]) {
      const probe = CATEGORIES.huge_id!({ ...ctx, hugeIdChars: chars })!;
      // Its own plain producer: a refused message must not upset the idempotent one.
      const p = kafka.producer();
      await p.connect();
      try {
        await p.send({ topic: PROBE, acks: -1, messages: [{ value: probe.value }] });
        return chars;
      } catch {
        // too large for this broker: try smaller
      } finally {
        await p.disconnect();
      }
    }
    throw new Error('no huge id fits the broker');
  }

  it('dead-letters every hostile message with its reason, counts every valid event exactly, and keeps consuming', async () => {
    const rng = new Rng(SEED);
    const registry = new SchemaRegistry({ host: registryFake.url, retry: { retries: 0 } }, { forSchemaOptions: avroTypeOptions() });
    const { latest } = usageEventSchemas();
    const { id: v2Id } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(latest.raw) }, { subject: 'usage.events-value' });
    // A writer whose value is a double (where NaN and ±Infinity live): registered, never readable as v2.
    const doubles = { ...(latest.raw as Record<string, unknown>), fields: (latest.raw as { fields: { name: string }[] }).fields.filter((f) => f.name !== 'source').map((f) => (f.name === 'value' ? { name: 'value', type: 'double' } : f)) };
    const { id: doubleId } = await registry.register({ type: SchemaType.AVRO, schema: JSON.stringify(doubles) }, { subject: 'doubles-value' });
    const base = { rng, now: NOW, meter: 'api_calls', unknownSchemaIds: [0, -7, v2Id + 1000, v2Id + 1001, 2 ** 31 - 1], unreadableSchemaId: doubleId };
    const hugeIdChars = await largestIdThatFits(base);
    process.stdout.write(`hostile-input (integration): largest id the broker takes: ${hugeIdChars} characters\n`);
    const ctx: HostileContext = { ...base, hugeIdChars };

    // --- plan: hostile messages of every category, interleaved with valid events, copies and conflicts.
    const hostile: HostileMessage[] = [];
    for (const name of CATEGORY_NAMES) {
      for (let i = 0; i < (name === 'huge_id' ? HUGE_IDS : HOSTILE_PER_CATEGORY); i += 1) hostile.push(CATEGORIES[name]!(ctx)!);
    }
    const expected = new Map<string, bigint>(); // customer -> exact total
    const valid: { raw: RawEvent; partition: number; value: Buffer }[] = [];
    for (let i = 0; i < VALID; i += 1) {
      const value = rng.chance(0.005) ? '99999999999999999999.999999999' : rng.chance(0.05) ? '0' : `${rng.int(100_000)}.${String(rng.int(1e9)).padStart(9, '0')}`;
      const raw: RawEvent = {
        id: `ok-${i}`,
        tenant: 'fuzz-ok',
        customer: `c${rng.int(5)}`,
        meter: 'api_calls',
        value: decimalBytes(value),
        timestamp: NOW - rng.int(600_000),
        properties: rng.chance(0.3) ? [['region', rng.pick(['eu', 'us'])]] : [],
        source: rng.chance(0.5) ? 'fuzz' : null,
      };
      expected.set(raw.customer as string, (expected.get(raw.customer as string) ?? 0n) + units(value));
      const body = encodeBodyV2(raw);
      valid.push({ raw, partition: rng.int(PARTITIONS), value: rng.chance(0.3) ? confluent(v2Id, body) : singleObject(body) });
    }
    const keyOf = (r: RawEvent) => partitionKey({ tenant: r.tenant as string, id: r.id as string });
    const hostileKey = () => rng.pick<string | null>([null, 'junk', 'a\u001fb', 'b\u001fc', '\u0000', rng.word()]);
    // Shuffle hostile and valid together (valid ones keep their relative order).
    const first: Planned[] = [];
    let h = 0;
    let v = 0;
    const shuffledHostile = hostile.map((m) => ({ m, r: rng.next() })).sort((a, b) => a.r - b.r).map((x) => x.m);
    while (h < shuffledHostile.length || v < valid.length) {
      const takeValid = v < valid.length && (h >= shuffledHostile.length || rng.chance(valid.length / (valid.length + shuffledHostile.length)));
      if (takeValid) {
        const e = valid[v++]!;
        first.push({ partition: e.partition, key: keyOf(e.raw), value: e.value });
      } else {
        const m = shuffledHostile[h++]!;
        first.push({ partition: rng.int(PARTITIONS), key: hostileKey(), value: m.value, hostile: m });
      }
    }
    // Later: exact copies (duplicates) and changed copies (conflicts) in their original's partition.
    const copies: Planned[] = [];
    let duplicates = 0;
    let conflicts = 0;
    for (const e of valid) {
      if (rng.chance(0.05)) {
        copies.push({ partition: e.partition, key: keyOf(e.raw), value: e.value });
        duplicates += 1;
      } else if (rng.chance(0.02)) {
        copies.push({ partition: e.partition, key: keyOf(e.raw), value: singleObject(encodeBodyV2({ ...e.raw, value: decimalBytes('123456') })) });
        conflicts += 1;
      }
    }
    // Finally, valid events after all the hostile ones: the worker must still be consuming.
    const after: Planned[] = Array.from({ length: 10 }, (_, i) => {
      const raw: RawEvent = { id: `after-${i}`, tenant: 'fuzz-after', customer: 'c', meter: 'api_calls', value: decimalBytes('1'), timestamp: NOW - 1000, properties: [], source: null };
      return { partition: i % PARTITIONS, key: keyOf(raw), value: singleObject(encodeBodyV2(raw)) };
    });

    // --- publish (raw bytes), remembering each hostile message's (partition, offset).
    const byOffset = new Map<string, HostileMessage>();
    const publish = async (planned: Planned[]) => {
      for (let i = 0; i < planned.length; i += 200) {
        const chunk = planned.slice(i, i + 200);
        const meta = await producer.send({ topic: TOPIC, acks: -1, messages: chunk.map((p) => ({ partition: p.partition, key: p.key, value: p.value })) });
        const base = new Map(meta.map((m) => [m.partition, BigInt(m.baseOffset!)]));
        const rank = new Map<number, bigint>();
        for (const p of chunk) {
          const r = rank.get(p.partition) ?? 0n;
          rank.set(p.partition, r + 1n);
          if (p.hostile) byOffset.set(`${p.partition}:${base.get(p.partition)! + r}`, p.hostile);
        }
      }
    };
    const decoder = createDecoder({ registry });
    const meters = parseMeterCatalog({ meters: [{ name: 'api_calls', aggregation: 'sum', window: 'hour', allowed_lateness: '1d' }] });
    if (!meters.ok) throw new Error(meters.problems.join('; '));
    worker = await startIngestWorker({
      kafka,
      topic: TOPIC,
      groupId: 'hostile-fuzz',
      logger: silentLogger(),
      consumer: TEST_CONSUMER_TIMINGS,
      watermarkStore: createWatermarkStore(ch.client, ch.database),
      deps: {
        decoder,
        meters: () => meters.catalog,
        ledger: createLedgerStore(ch.client, ch.database, { dedupeWindowMs: 35 * 86_400_000 }),
        deadLetters,
        clock: Date.now,
        maxFutureSkewMs: 300_000,
      },
    });
    const started = Date.now();
    await publish(first);
    await publish(copies);
    await waitFor('hostile and valid messages consumed', () => worker.totals.consumed >= first.length + copies.length, 90_000, 100);
    await publish(after);
    const total = first.length + copies.length + after.length;
    await waitFor('valid events published after the hostile ones stored', () => worker.totals.consumed >= total, 30_000, 100);
    const elapsed = Date.now() - started;

    // --- every hostile message: exactly one rejected_events row at its source offset, with its code and reason.
    const rejected = await rows<{ partition: number; offset: string; reason_code: string; reason: string; n: string }>(
      ch.client,
      `SELECT partition, toString(offset) AS offset, any(reason_code) AS reason_code, any(reason) AS reason, count() AS n
       FROM ${ch.database}.rejected_events FINAL WHERE topic = {t:String} GROUP BY partition, offset`,
      { t: TOPIC },
    );
    const wrong: unknown[] = [];
    const byCategory: Record<string, Record<string, number>> = {};
    for (const r of rejected) {
      const m = byOffset.get(`${r.partition}:${r.offset}`);
      if (!m) {
        wrong.push({ unexpectedRejection: r });
        continue;
      }
      if (Number(r.n) !== 1 || !m.expect.includes(r.reason_code as never) || !r.reason || (m.reason && !m.reason.test(r.reason))) {
        wrong.push({ category: m.category, code: r.reason_code, reason: r.reason.slice(0, 120), n: r.n });
      }
      (byCategory[m.category] ??= {})[r.reason_code] = ((byCategory[m.category] ??= {})[r.reason_code] ?? 0) + 1;
    }
    process.stdout.write(
      `hostile-input (integration): ${hostile.length} hostile + ${VALID} valid + ${duplicates} copies + ${conflicts} conflicting copies + ${after.length} after, in ${elapsed} ms\n` +
        Object.entries(byCategory)
          .map(([c, codes]) => `  ${c}: ${Object.entries(codes).map(([k, n]) => `${k} ${n}`).join(', ')}`)
          .join('\n') +
        '\n',
    );
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(rejected.length).toBe(hostile.length);
    expect(Object.keys(byCategory).sort()).toEqual([...CATEGORY_NAMES].sort());

    // --- the DLQ topic: one record per hostile message, original bytes, reason code in its headers.
    const dlq = kafka.consumer({ groupId: `hostile-dlq-${Date.now()}`, ...TEST_CONSUMER_TIMINGS });
    const seen = new Map<string, { code: string; n: number; sameBytes: boolean }>();
    await dlq.connect();
    await dlq.subscribe({ topic: DLQ, fromBeginning: true });
    void dlq.run({
      eachMessage: async ({ message }) => {
        const hd = (k: string) => String(message.headers?.[k] ?? '');
        const at = `${hd(DLQ_HEADERS.partition)}:${hd(DLQ_HEADERS.offset)}`;
        const m = byOffset.get(at);
        const prev = seen.get(at);
        const sameBytes = m !== undefined && (m.value === null || m.value.length === 0 ? (message.value?.length ?? 0) === 0 : message.value !== null && m.value.equals(message.value));
        seen.set(at, { code: hd(DLQ_HEADERS.reasonCode), n: (prev?.n ?? 0) + 1, sameBytes });
      },
    });
    await waitFor('every dead letter on the DLQ topic', () => seen.size >= hostile.length, 30_000, 100);
    await dlq.disconnect();
    const dlqWrong = [...seen].filter(([at, s]) => {
      const m = byOffset.get(at);
      return !m || s.n !== 1 || !s.sameBytes || !m.expect.includes(s.code as never);
    });
    expect(dlqWrong.slice(0, 5)).toEqual([]);
    expect(seen.size).toBe(hostile.length);

    // --- valid events: all there, exact totals (ledger and counters), nothing hostile slipped in.
    const ledger = await rows<{ tenant: string; customer: string; n: string; total: string }>(
      ch.client,
      `SELECT tenant, customer, count() AS n, toString(sum(value)) AS total FROM ${ch.database}.usage_events GROUP BY tenant, customer ORDER BY tenant, customer`,
    );
    const want = [...expected].sort(([a], [b]) => a.localeCompare(b)).map(([customer, t]) => ({ tenant: 'fuzz-ok', customer, total: formatDecimal(t) }));
    expect(ledger.filter((r) => r.tenant === 'fuzz-ok').map(({ tenant, customer, total }) => ({ tenant, customer, total }))).toEqual(want);
    expect(ledger.filter((r) => r.tenant === 'fuzz-ok').reduce((n, r) => n + Number(r.n), 0)).toBe(VALID);
    expect(ledger.filter((r) => r.tenant === 'fuzz-after').reduce((n, r) => n + Number(r.n), 0)).toBe(after.length);
    expect(new Set(ledger.map((r) => r.tenant))).toEqual(new Set(['fuzz-ok', 'fuzz-after']));
    const counters = await rows<{ customer: string; total: string }>(
      ch.client,
      `SELECT customer, toString(sum(value)) AS total FROM ${ch.database}.usage_counters FINAL WHERE tenant = 'fuzz-ok' GROUP BY customer ORDER BY customer`,
    );
    expect(counters).toEqual(want.map(({ customer, total }) => ({ customer, total })));

    // --- accounting: consumed = accepted + duplicates + conflicts + rejected, in the worker and in the tables.
    const t = worker.totals;
    expect({ consumed: t.consumed, accepted: t.accepted, duplicates: t.duplicates, conflicts: t.conflicts, rejected: t.rejected, redelivered: t.redelivered }).toEqual({
      consumed: total,
      accepted: VALID + after.length,
      duplicates,
      conflicts,
      rejected: hostile.length,
      redelivered: 0,
    });
    const stored =
      (await count(ch.client, `SELECT count() AS c FROM ${ch.database}.usage_events`)) +
      (await count(ch.client, `SELECT count() AS c FROM ${ch.database}.duplicate_events FINAL`)) +
      (await count(ch.client, `SELECT count() AS c FROM ${ch.database}.rejected_events FINAL`));
    expect(stored).toBe(total);
  });
});
