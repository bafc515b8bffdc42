import { createLogger } from '../../src/runtime/logger';

/** Secrets never reach a log line: by field name, and by value wherever the value turns up. */
function capture(secrets: string[]) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', secrets, destination: { write: (l: string) => void lines.push(l) } });
  return { logger, text: () => lines.join('') };
}

describe('logger: secrets are redacted', () => {
  const KEY = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc';
  const PASSWORD = 'p"a\\ss/wörd?&';

  it('censors fields named like secrets, at any depth', () => {
    const { logger, text } = capture([]);
    logger.info({ password: 'x1', config: { stripeApiKey: 'x2', clickhousePassword: 'x3' }, req: { headers: { authorization: 'Bearer x4' } } }, 'hello');
    for (const v of ['x1', 'x2', 'x3', 'Bearer x4']) expect(text()).not.toContain(v);
    expect(text()).toContain('[redacted]');
  });

  it('replaces configured secret values inside messages, errors and nested strings', () => {
    const { logger, text } = capture([KEY, PASSWORD]);
    logger.error({ err: new Error(`Invalid API Key provided: ${KEY}`) }, 'stripe call failed');
    logger.warn({ url: `http://u:${encodeURIComponent(PASSWORD)}@ch:8123`, detail: { echoed: `auth ${PASSWORD}` } }, `child with ${KEY}`);
    logger.child({ module: 'x' }).debug(`again ${PASSWORD}`);
    const out = text();
    expect(out).not.toContain(KEY);
    expect(out).not.toContain(JSON.stringify(PASSWORD).slice(1, -1));
    expect(out).not.toContain(encodeURIComponent(PASSWORD));
    expect(out.match(/\[redacted\]/g)!.length).toBeGreaterThanOrEqual(5);
    // Still one JSON object per line.
    for (const line of out.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
  });
});

describe('logger: readable lines for people', () => {
  const KEY = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc';

  function pretty(secrets: string[]) {
    const lines: string[] = [];
    const logger = createLogger({ level: 'debug', format: 'pretty', secrets, destination: { write: (l: string) => void lines.push(l) } });
    return { logger, lines };
  }

  it('prints one line per record: time, level, module, message, then the fields', () => {
    const { logger, lines } = pretty([]);
    logger.child({ module: 'ingest' }).info({ accepted: 1000, duplicates: 98 }, 'ingest progress');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: ingest: ingest progress \{"accepted":1000,"duplicates":98\}\n$/);
    expect(() => JSON.parse(lines[0]!)).toThrow();
  });

  it('keeps secrets out of readable lines too', () => {
    const { logger, lines } = pretty([KEY]);
    logger.child({ module: 'pusher' }).error({ password: 'x1', err: new Error(`Invalid API Key provided: ${KEY}`) }, `push failed for ${KEY}`);
    const out = lines.join('');
    expect(out).toContain('ERROR: pusher: push failed for [redacted]');
    expect(out).not.toContain(KEY);
    expect(out).not.toContain('x1');
  });

  it('writes JSON lines when asked for JSON or when the destination is not the terminal', () => {
    for (const format of ['json', 'auto'] as const) {
      const lines: string[] = [];
      createLogger({ format, destination: { write: (l: string) => void lines.push(l) } }).info({ n: 1 }, 'hello');
      expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'hello', n: 1 });
    }
  });
});
