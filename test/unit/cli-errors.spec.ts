import { unreachable } from '../../src/cli/clickhouse';

describe('an unreachable ClickHouse, in one line that says what to check', () => {
  const refused = new Error('connect ECONNREFUSED 127.0.0.1:8123');

  it('a server: its address without credentials, and CLICKHOUSE_URL', () => {
    const e = unreachable({ kind: 'server', url: 'https://reader:s3cret-pw@ch.internal:8443/', setting: 'CLICKHOUSE_URL' }, refused);
    expect(e.message).toBe('cannot reach ClickHouse at https://ch.internal:8443 (connect ECONNREFUSED 127.0.0.1:8123): check CLICKHOUSE_URL and that the server is running');
    expect(e.message).not.toContain('s3cret');
    expect(e).toMatchObject({ code: 'clickhouse_unreachable', retriable: false });
  });

  it('the engine served by another process: which process, and the file that named it', () => {
    const e = unreachable({ kind: 'served', url: 'http://127.0.0.1:41721', pid: 4242, stateFile: '/srv/.meterline/dev-clickhouse.json' }, refused);
    expect(e.message).toBe(
      'cannot reach the embedded ClickHouse served by process 4242 at http://127.0.0.1:41721 (connect ECONNREFUSED 127.0.0.1:8123), as recorded in /srv/.meterline/dev-clickhouse.json: is it still running? Or set CLICKHOUSE_URL',
    );
  });

  it('a cause that quotes a secret gets it scrubbed', () => {
    const e = unreachable({ kind: 'server', url: 'http://127.0.0.1:1', setting: 'CLICKHOUSE_URL' }, new Error('GET http://u:hunter22@127.0.0.1:1 failed'));
    expect(e.message).not.toContain('hunter22');
  });
});
