import { BadRequest, httpStatusFor, parseEngineRequest, parseMultipart, preamble, quoteString } from '../../src/dev/dev-clickhouse/request';

const q = (s: string) => new URLSearchParams(s);

describe('dev ClickHouse server: reading a request as ClickHouse does', () => {
  it('takes the SQL from the body, or from `query` followed by the body (an INSERT and its rows)', () => {
    expect(parseEngineRequest(q(''), 'SELECT 1').sql).toBe('SELECT 1');
    expect(parseEngineRequest(q('query=INSERT+INTO+t+FORMAT+JSONEachRow'), '{"a":1}\n').sql).toBe('INSERT INTO t FORMAT JSONEachRow\n{"a":1}\n');
    expect(parseEngineRequest(q('query=SELECT+2'), '').sql).toBe('SELECT 2');
    expect(() => parseEngineRequest(q(''), '  ')).toThrow(BadRequest);
  });

  it('keeps param_ values as sent (the engine binds them), and every other unknown parameter is a setting', () => {
    const r = parseEngineRequest(q("param_s=it%5C's&param_a=%5B'x'%5D&mutations_sync=2&database=db1&query_id=abc&default_format=JSONEachRow&wait_end_of_query=1&enable_http_compression=1"), 'SELECT 1');
    expect(r.params).toEqual({ s: "it\\'s", a: "['x']" });
    expect(r.settings).toEqual({ mutations_sync: '2' });
    expect(r).toMatchObject({ database: 'db1', queryId: 'abc', format: 'JSONEachRow', compressResponse: true });
    expect(parseEngineRequest(q(''), 'SELECT 1').format).toBe('TabSeparated');
  });

  it('refuses setting names, databases and formats that are not identifiers', () => {
    expect(() => parseEngineRequest(q('a%3Bb=1'), 'SELECT 1')).toThrow(/Unknown setting/);
    expect(() => parseEngineRequest(q('database=x%60y'), 'SELECT 1')).toThrow(BadRequest);
    expect(() => parseEngineRequest(q('default_format=JSON%3B'), 'SELECT 1')).toThrow(BadRequest);
  });

  it('quotes setting values the way ClickHouse reads string literals: they can never end the literal', () => {
    expect(quoteString("x'; DROP TABLE t; --")).toBe("'x\\'; DROP TABLE t; --'");
    expect(quoteString("\\'")).toBe("'\\\\\\''");
    expect(preamble({ settings: { log_comment: "a'b" }, database: 'db1' })).toBe("SET log_comment = 'a\\'b';\nUSE `db1`;\n");
    expect(preamble({ settings: {}, database: 'default' })).toBe('');
  });

  it('reads the multipart bodies of use_multipart_params', () => {
    const body = Buffer.from('--B\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT {a:String}\r\n--B\r\nContent-Disposition: form-data; name="param_a"\r\n\r\nx\r\ny\r\n--B--\r\n');
    const parts = parseMultipart('multipart/form-data; boundary=B', body)!;
    expect([...parts]).toEqual([['query', 'SELECT {a:String}'], ['param_a', 'x\r\ny']]);
    expect(parseEngineRequest(q(''), '', parts)).toMatchObject({ sql: 'SELECT {a:String}', params: { a: 'x\r\ny' } });
    expect(parseMultipart('text/plain', body)).toBeNull();
  });

  it('answers with the HTTP status ClickHouse uses for the common codes', () => {
    expect([httpStatusFor(516), httpStatusFor(62), httpStatusFor(60), httpStatusFor(241)]).toEqual([401, 400, 404, 500]);
  });
});
