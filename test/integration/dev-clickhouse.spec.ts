import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ClickHouseError, ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../src/adapters/clickhouse/client';
import { loadConfig } from '../../src/config/config';
import { runCli } from '../helpers/cli';
import { startDevClickHouse, type TestDevClickHouse } from '../helpers/dev-clickhouse';
import { waitFor } from '../helpers/wait';

/**
 * `meterline dev-clickhouse` serves the embedded engine over the ClickHouse HTTP interface so
 * several processes share one engine. This test process never opens chdb itself: it is one
 * more HTTP client, exactly like the CLI processes it spawns.
 */
const HOSTILE = [
  "it's",
  'back\\slash',
  "'; DROP TABLE t; --",
  "\\'; DROP TABLE t; --",
  'tab\there\nnewline\rcr',
  '{s:String} and {{braces}}',
  'ünïcødé — 日本語 🚀',
  '\\N',
  '',
  "a'b\\'c\\\\'d",
];

describe('meterline dev-clickhouse', () => {
  let dir: string;
  let server: TestDevClickHouse;
  let env: NodeJS.ProcessEnv;
  let client: ClickHouseClient;
  const DB = 'devch';

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-devch-'));
    server = await startDevClickHouse(dir, { CLICKHOUSE_USER: 'alice', CLICKHOUSE_PASSWORD: 's3cret-pw' });
    env = { METERLINE_DATA_DIR: dir, CLICKHOUSE_URL: server.url, CLICKHOUSE_USER: 'alice', CLICKHOUSE_PASSWORD: 's3cret-pw', CLICKHOUSE_DATABASE: DB };
    client = createClickHouse(loadConfig(env));
  }, 90_000);

  afterAll(async () => {
    await client?.close();
    if (server) expect(await server.stop()).toEqual({ code: 0, signal: null });
    if (dir) {
      expect(fs.existsSync(path.join(dir, 'dev-clickhouse.json'))).toBe(false);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const count = async (query: string) => Number((await rows<{ n: string | number }>(query))[0]!.n);
  const rows = async <T>(query: string, query_params: Record<string, unknown> = {}, c = client) =>
    (await c.query({ query, query_params, format: 'JSONEachRow' })).json<T>();

  it('prints its URL first, answers /ping, and keeps its secrets out of its logs', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await client.ping()).toEqual({ success: true });
    await waitFor('the server to log its warning', () => server.logs().includes('NOT FOR PRODUCTION'));
    expect(server.logs()).not.toContain('s3cret-pw');
  });

  it('runs the migrations of `meterline migrate` (twice: idempotent), and the tables are there', async () => {
    for (let i = 0; i < 2; i += 1) {
      const r = await runCli(['migrate'], { env });
      expect(r.stderr).not.toMatch(/error/i);
      expect(r.code).toBe(0);
    }
    const tables = await rows<{ name: string }>('SELECT name FROM system.tables WHERE database = {db:String} ORDER BY name', { db: DB });
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['usage_events', 'usage_counters', 'stripe_pushes', 'customers']));
  });

  it('binds hostile query parameters in the engine: every string comes back byte for byte, none runs', async () => {
    await client.command({ query: `CREATE TABLE IF NOT EXISTS ${DB}.hostile (k UInt32, s String) ENGINE = MergeTree ORDER BY k` });
    await client.insert({ table: `${DB}.hostile`, values: HOSTILE.map((s, k) => ({ k, s })), format: 'JSONEachRow' });
    for (const [k, s] of HOSTILE.entries()) {
      expect(await rows<{ s: string }>('SELECT {s:String} AS s', { s })).toEqual([{ s }]);
      expect(await rows<{ k: number }>(`SELECT k FROM ${DB}.hostile WHERE s = {s:String}`, { s })).toEqual([{ k }]);
    }
    // Composite parameters, and the same in a multipart body (use_multipart_params).
    const arr = await rows<{ n: string }>(`SELECT count() AS n FROM ${DB}.hostile WHERE s IN {ss:Array(String)}`, { ss: HOSTILE });
    expect(Number(arr[0]!.n)).toBe(HOSTILE.length);
    const multipart = createClient({ url: server.url, username: 'alice', password: 's3cret-pw', use_multipart_params: true });
    try {
      expect(await rows<{ s: string; a: string[] }>('SELECT {s:String} AS s, {a:Array(String)} AS a', { s: HOSTILE[3], a: HOSTILE }, multipart)).toEqual([{ s: HOSTILE[3], a: HOSTILE }]);
    } finally {
      await multipart.close();
    }
    expect(await count(`SELECT count() AS n FROM ${DB}.hostile`)).toBe(HOSTILE.length);
  });

  it('applies settings to their request alone, hostile values included', async () => {
    const comment = "x'); DROP TABLE devch.hostile; --\\";
    const got = await client.query({
      query: "SELECT getSetting('max_threads') AS t, getSetting('log_comment') AS c",
      clickhouse_settings: { max_threads: 3, log_comment: comment },
      format: 'JSONEachRow',
    });
    expect(await got.json()).toEqual([{ t: 3, c: comment }]);
    const after = await rows<{ t: number }>("SELECT getSetting('max_threads') AS t");
    expect(after[0]!.t).not.toBe(3);
    expect(await count(`SELECT count() AS n FROM ${DB}.hostile`)).toBe(HOSTILE.length);
  });

  it('inserts, reads FINAL, and runs mutations with mutations_sync', async () => {
    await client.command({ query: `CREATE TABLE IF NOT EXISTS ${DB}.versions (k String, v UInt64, version UInt64) ENGINE = ReplacingMergeTree(version) ORDER BY k` });
    for (let version = 1; version <= 3; version += 1) {
      await client.insert({ table: `${DB}.versions`, values: [{ k: 'a', v: version * 10, version }, { k: 'b', v: version, version }], format: 'JSONEachRow' });
    }
    expect(await rows(`SELECT k, v FROM ${DB}.versions FINAL ORDER BY k`)).toEqual([{ k: 'a', v: 30 }, { k: 'b', v: 3 }]);
    await client.command({ query: `ALTER TABLE ${DB}.versions DELETE WHERE k = 'b'`, clickhouse_settings: { mutations_sync: '2' } });
    expect(await rows(`SELECT k, v FROM ${DB}.versions FINAL ORDER BY k`)).toEqual([{ k: 'a', v: 30 }]);
    // An empty insert is a no-op, as on a server.
    await client.insert({ table: `${DB}.versions`, values: [], format: 'JSONEachRow' });
  });

  it('reports errors as ClickHouse does: status, X-ClickHouse-Exception-Code, and a ClickHouseError with its code', async () => {
    const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e: unknown) => e);
    const unknownTable = await failure(client.query({ query: `SELECT * FROM ${DB}.no_such_table` }));
    expect(unknownTable).toBeInstanceOf(ClickHouseError);
    expect(unknownTable).toMatchObject({ code: '60', type: 'UNKNOWN_TABLE' });
    expect(await failure(client.command({ query: 'SELEC 1' }))).toMatchObject({ code: '62', type: 'SYNTAX_ERROR' });
    expect(await failure(client.query({ query: 'SELECT {n:UInt32}', query_params: { n: 'not a number' } }))).toBeInstanceOf(ClickHouseError);
    expect(await failure(client.insert({ table: `${DB}.versions`, values: [{ k: 'x', v: 'nope', version: 1 }], format: 'JSONEachRow' }))).toBeInstanceOf(ClickHouseError);

    const raw = await httpRequest(server.url, { path: `/?query=${encodeURIComponent('SELECT * FROM nowhere.nothing')}`, auth: 'alice:s3cret-pw' });
    expect(raw.status).toBe(404);
    expect(raw.headers['x-clickhouse-exception-code']).toBe('81');
    expect(raw.body).toMatch(/^Code: 81\. DB::Exception: .*\(UNKNOWN_DATABASE\) \(version \d+\.\d+[^)]*\)\n$/s);

    const intruder = createClient({ url: server.url, username: 'alice', password: 'wrong-pw-xyz', log: { level: ClickHouseLogLevel.OFF } });
    try {
      expect(await failure(intruder.query({ query: 'SELECT 1' }))).toMatchObject({ code: '516', type: 'AUTHENTICATION_FAILED' });
    } finally {
      await intruder.close();
    }
    expect((await httpRequest(server.url, { path: '/?query=SELECT%201' })).status).toBe(401);
    // The server's log comes through its stdout pipe, after its answer: wait for the line.
    await waitFor('the server to log the refusal', () => server.logs().includes('refused a request'));
    expect(server.logs()).not.toContain('wrong-pw-xyz');
  });

  it('serves compressed requests and responses', async () => {
    const gz = createClient({ url: server.url, username: 'alice', password: 's3cret-pw', compression: { request: true, response: true } });
    try {
      await gz.insert({ table: `${DB}.versions`, values: [{ k: 'gz', v: 7, version: 1 }], format: 'JSONEachRow' });
      expect(await rows(`SELECT v FROM ${DB}.versions FINAL WHERE k = 'gz'`, {}, gz)).toEqual([{ v: 7 }]);
    } finally {
      await gz.close();
    }
  });

  it('lands the writes of two CLI processes writing at once, and of concurrent requests of one client', async () => {
    const csv = (tenant: string) => ['tenant,customer,stripe_customer_id', ...Array.from({ length: 2000 }, (_, i) => `${tenant},c${i},cus_${tenant}x${i}`)].join('\n');
    fs.writeFileSync(path.join(dir, 'a.csv'), csv('ta'));
    fs.writeFileSync(path.join(dir, 'b.csv'), csv('tb'));
    const [a, b] = await Promise.all([runCli(['customers', 'import', path.join(dir, 'a.csv')], { env }), runCli(['customers', 'import', path.join(dir, 'b.csv')], { env })]);
    expect([a.stderr, b.stderr]).toEqual(['', '']);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect(await rows(`SELECT tenant, toUInt32(count()) AS n FROM ${DB}.customers FINAL GROUP BY tenant ORDER BY tenant`)).toEqual([
      { tenant: 'ta', n: 2000 },
      { tenant: 'tb', n: 2000 },
    ]);
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => rows<{ i: number }>('SELECT {i:UInt32} AS i', { i })));
    expect(answers.map((r) => r[0]!.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it('survives clients that go away mid-request; a body that never arrived whole is not run', async () => {
    await client.command({ query: `CREATE TABLE IF NOT EXISTS ${DB}.torn (k UInt32) ENGINE = MergeTree ORDER BY k` });
    // An INSERT whose body is cut off: the engine never sees it.
    await new Promise<void>((resolve) => {
      const u = new URL(server.url);
      const req = http.request({
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: `/?query=${encodeURIComponent(`INSERT INTO ${DB}.torn FORMAT JSONEachRow`)}`,
        headers: { authorization: `Basic ${Buffer.from('alice:s3cret-pw').toString('base64')}`, 'content-length': '100000' },
      });
      req.on('error', () => resolve());
      req.write('{"k":1}\n{"k":2}\n');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    // A slow query abandoned by its client (abort): the server finishes it and drops the answer.
    const quiet = createClient({ url: server.url, username: 'alice', password: 's3cret-pw', log: { level: ClickHouseLogLevel.OFF } });
    try {
      const controller = new AbortController();
      const slow = quiet.query({ query: 'SELECT sleep(1)', abort_signal: controller.signal }).catch((e: unknown) => e);
      setTimeout(() => controller.abort(), 100);
      expect(await slow).toBeInstanceOf(Error);
    } finally {
      await quiet.close();
    }
    expect(await count(`SELECT count() AS n FROM ${DB}.torn`)).toBe(0);
    expect(await client.ping()).toEqual({ success: true });
  });

  it('owns its data directory: a command on the same directory without CLICKHOUSE_URL goes through it', async () => {
    const embedded = await runCli(['stats', '--json'], { env: { METERLINE_DATA_DIR: dir, CLICKHOUSE_DATABASE: DB, CLICKHOUSE_USER: 'alice', CLICKHOUSE_PASSWORD: 's3cret-pw' } });
    expect(embedded.stderr).toBe('');
    expect(embedded.code).toBe(0);
    expect(JSON.parse(embedded.stdout)).toHaveProperty('accounting');
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'dev-clickhouse.json'), 'utf8')) as { url: string; pid: number };
    expect(state).toMatchObject({ url: server.url, pid: server.process.pid });
  });
});

function httpRequest(base: string, opts: { path: string; auth?: string; body?: string }): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        method: opts.body === undefined ? 'GET' : 'POST',
        path: opts.path,
        headers: opts.auth ? { authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` } : {},
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
