import { startHttpServer } from '../../src/runtime/http-server';
import { createLogger } from '../../src/runtime/logger';

/** A handler that fails answers 500 without internals, and the operator finds why in the log. */
describe('http server: a failing handler', () => {
  const KEY = 'sk_test_4eC39HqLyjWDarjtT1zdp7dc';

  it('answers 500 with no internals and logs the error with its path, secrets scrubbed', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', secrets: [KEY], destination: { write: (l: string) => void lines.push(l) } });
    const server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      logger,
      routes: {
        '/webhooks/stripe': async () => {
          throw new Error(`Stripe refused the read (key ${KEY}): rate limited`);
        },
      },
    });
    try {
      const answer = await fetch(`${server.url}/webhooks/stripe?x=1`, { method: 'POST', body: '{}' });
      expect(answer.status).toBe(500);
      const body = await answer.text();
      expect(body).toBe('internal error\n');
      const records = lines.map((l) => JSON.parse(l) as { level: number; module?: string; path?: string; method?: string; msg: string; err?: { message: string } });
      const failed = records.filter((r) => r.path === '/webhooks/stripe');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ level: 50, module: 'http', method: 'POST', msg: expect.stringMatching(/handler failed/) });
      expect(failed[0]!.err!.message).toMatch(/rate limited/);
      expect(lines.join('')).not.toContain(KEY);
    } finally {
      await server.close();
    }
  });
});
