/**
 * The command line as a person meets it: readable logs on a terminal, JSON through a pipe;
 * failures in one line that name what to fix; reading commands that never write; output as
 * aligned tables, JSON or real CSV.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { parse } from 'csv-parse/sync';
import { runCli } from '../helpers/cli';
import { startDevClickHouse, type TestDevClickHouse } from '../helpers/dev-clickhouse';
import { plain, runInTerminal } from '../helpers/terminal';

const FROM = '2026-11-01T00:00:00Z';
const TO = '2026-11-02T00:00:00Z';
const READING_COMMANDS = [['stats'], ['stats', '--by-customer'], ['query', '--tenant', 'acme', '--from', FROM, '--to', TO], ['dlq', 'list'], ['reconcile', '--from', FROM, '--to', TO]];

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('the command line', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'meterline-cli-'));
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  describe('logs', () => {
    it('are readable lines on a terminal: time, level, module, message, fields; no JSON', async () => {
      const r = await runInTerminal(['migrate'], { env: { METERLINE_DATA_DIR: tempDir() } });
      expect(r.code).toBe(0);
      const lines = plain(r.screen).split('\n');
      expect(lines).toContainEqual(expect.stringMatching(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: schema is up to date \{"database":"meterline","statements":\d+\}$/));
      expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
      expect(r.screen).toMatch(/\u001b\[3\dm/); // coloured, as on any terminal
    }, 120_000);

    it('are JSON lines when stderr is a pipe, or on a terminal with LOG_FORMAT=json', async () => {
      const piped = await runCli(['migrate'], { env: { METERLINE_DATA_DIR: tempDir(), LOG_LEVEL: 'info' } });
      expect(piped.code).toBe(0);
      const onTerminal = await runInTerminal(['migrate'], { env: { METERLINE_DATA_DIR: tempDir(), LOG_FORMAT: 'json' } });
      expect(onTerminal.code).toBe(0);
      for (const stderr of [piped.stderr, plain(onTerminal.screen).split('\n').filter((l) => l.startsWith('{')).join('\n')]) {
        const records = stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
        expect(records).toContainEqual(expect.objectContaining({ level: 30, msg: 'schema is up to date', database: 'meterline' }));
      }
    }, 120_000);
  });

  describe('errors say what to do', () => {
    it('ClickHouse unreachable: one line naming the address and CLICKHOUSE_URL, no password, no client dump', async () => {
      const port = await closedPort();
      for (const args of [['stats'], ['migrate'], ['query', '--tenant', 'a', '--from', FROM, '--to', TO]]) {
        const r = await runCli(args, { env: { METERLINE_DATA_DIR: tempDir(), CLICKHOUSE_URL: `http://reader:pa55word-x@127.0.0.1:${port}` } });
        expect({ args, code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
          args,
          code: 2,
          stdout: '',
          stderr: `meterline: cannot reach ClickHouse at http://127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}): check CLICKHOUSE_URL and that the server is running\n`,
        });
      }
    });

    it.each([['publish'], ['run', '--no-demo']])('Kafka unreachable: `%s` fails within a few seconds in one line naming the brokers and KAFKA_BROKERS', async (...args) => {
      const [a, b] = [await closedPort(), await closedPort()];
      const started = Date.now();
      const r = await runCli(args, { env: { METERLINE_DATA_DIR: tempDir(), KAFKA_BROKERS: `127.0.0.1:${a},127.0.0.1:${b}`, METRICS_PORT: '0', LOG_LEVEL: 'warn' }, input: '' });
      const seconds = (Date.now() - started) / 1000;
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^meterline: cannot reach Kafka at 127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b} \\(.*ECONNREFUSED.*\\): check KAFKA_BROKERS$`))]);
      expect(seconds).toBeLessThan(10);
    }, 60_000);

    it('a configuration value out of range names the range', async () => {
      const r = await runCli(['config'], { env: { DEDUPE_WINDOW_DAYS: '30', METRICS_PORT: '70000' } });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('DEDUPE_WINDOW_DAYS must be at least 35');
      expect(r.stderr).toContain('METRICS_PORT must be 0–65535, got 70000');
    });
  });

  describe('reading never writes', () => {
    it('on an empty data directory, every reading command says to run `meterline migrate` and creates no table', async () => {
      const dataDir = tempDir();
      for (const args of READING_COMMANDS) {
        const r = await runCli(args, { env: { METERLINE_DATA_DIR: dataDir } });
        expect({ args, code: r.code, stderr: r.stderr }).toEqual({
          args,
          code: 2,
          stderr: 'meterline: ClickHouse database meterline has no meterline tables yet: run `meterline migrate` first (with a user allowed to create tables)\n',
        });
      }
      const server = await startDevClickHouse(dataDir);
      const client = createClient({ url: server.url, log: { level: ClickHouseLogLevel.OFF } });
      try {
        const rs = await client.query({ query: "SELECT name FROM system.databases WHERE name = 'meterline'", format: 'JSONEachRow' });
        expect(await rs.json()).toEqual([]);
      } finally {
        await client.close();
        await server.stop();
      }
    }, 180_000);

    describe('on a migrated database', () => {
      let server: TestDevClickHouse;
      let client: ClickHouseClient;
      let env: NodeJS.ProcessEnv;

      beforeAll(async () => {
        const dataDir = tempDir();
        expect((await runCli(['migrate'], { env: { METERLINE_DATA_DIR: dataDir } })).code).toBe(0);
        server = await startDevClickHouse(dataDir);
        client = createClient({ url: server.url, log: { level: ClickHouseLogLevel.OFF } });
        // As a read-only user: the server refuses every write and DDL (readonly=2, the profile README recommends).
        env = { METERLINE_DATA_DIR: tempDir(), CLICKHOUSE_URL: `${server.url}/?clickhouse_setting_readonly=2` };
        // Dead letters whose texts hold every character CSV and tables must handle.
        const base = { raw_payload: '', message_key: null, topic: 'usage.events', partition: 0, status: 'rejected' };
        await client.insert({
          table: 'meterline.rejected_events',
          format: 'JSONEachRow',
          values: [
            { ...base, offset: '1', reason_code: 'invalid_event', reason: 'customer "c,1" is not an identifier,\nsee line 2', tenant: 'acme', event_id: 'e,"1"' },
            { ...base, offset: '2', reason_code: 'unknown_meter', reason: '=HYPERLINK("x")', tenant: 'acme', event_id: 'e2' },
          ],
        });
      }, 180_000);

      afterAll(async () => {
        await client?.close();
        await server?.stop();
      });

      it('every reading command works for a read-only user, and none of them changed the schema', async () => {
        const schema = async () => (await (await client.query({ query: "SELECT name, metadata_modification_time FROM system.tables WHERE database = 'meterline' ORDER BY name", format: 'JSONEachRow' })).json());
        const before = await schema();
        for (const args of READING_COMMANDS) {
          const r = await runCli(args, { env });
          expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
        }
        expect(await schema()).toEqual(before);
      }, 120_000);

      it('on a terminal, dlq list and stats --by-customer print aligned tables', async () => {
        const dlq = await runInTerminal(['dlq', 'list'], { env });
        expect(dlq.code).toBe(0);
        const lines = plain(dlq.screen).split('\n');
        const header = lines.findIndex((l) => /^source\s+status\s+reason_code\s+tenant\s+event_id\s+rejected_at\s+reason$/.test(l));
        expect(header).toBeGreaterThanOrEqual(0);
        expect(lines[header + 2]).toMatch(/^usage\.events\/0@1\s+rejected\s+invalid_event\s+acme\s+e,"1"\s+\S+ \S+\s+customer "c,1" is not an identifier,\\nsee line 2$/);
        const stats = await runInTerminal(['stats', '--by-customer'], { env });
        expect(stats.code).toBe(0);
        expect(plain(stats.screen)).toMatch(/\ntenant\s+customer\s+meter\s+events\s+value\s+counted_events\s+counted_value\s+counter_events\s+counter_value\n-+ +-+/);
      }, 60_000);

      it('dlq list --format csv is real CSV: commas, quotes and line breaks survive a round trip; formulas are defused', async () => {
        const r = await runCli(['dlq', 'list', '--format', 'csv'], { env });
        expect(r.code).toBe(0);
        const rows = parse(r.stdout, { columns: true }) as Record<string, string>[];
        expect(rows.map((x) => ({ event_id: x.event_id, reason: x.reason, source: x.source }))).toEqual(
          expect.arrayContaining([
            { event_id: 'e,"1"', reason: 'customer "c,1" is not an identifier,\nsee line 2', source: 'usage.events/0@1' },
            { event_id: 'e2', reason: `'=HYPERLINK("x")`, source: 'usage.events/0@2' },
          ]),
        );
        expect(rows).toHaveLength(2);
      });

      it('dlq list prints an aligned table, one line per dead letter; --format json is unchanged', async () => {
        const r = await runCli(['dlq', 'list'], { env });
        const lines = r.stdout.trimEnd().split('\n');
        expect(lines[0]).toMatch(/^source\s+status\s+reason_code\s+tenant\s+event_id\s+rejected_at\s+reason$/);
        expect(lines).toHaveLength(5); // header, rule, two dead letters, count
        const reasonColumn = lines[0]!.indexOf('reason', lines[0]!.indexOf('rejected_at') + 1);
        for (const line of lines.slice(2, 4)) expect(line.slice(reasonColumn)).toMatch(/^(customer "c,1" is not an identifier,\\nsee line 2|=HYPERLINK\("x"\))$/);
        expect(lines[4]).toBe('2 dead letter(s)');
        const json = await runCli(['dlq', 'list', '--format', 'json'], { env });
        expect(JSON.parse(json.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ event_id: 'e,"1"', reason_code: 'invalid_event', offset: '1' })]));
      });
    });
  });
});
