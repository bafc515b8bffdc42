import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger';

export type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void;

/**
 * The worker's HTTP surface (metrics, health probes, webhooks). Binds to 127.0.0.1 unless HTTP_HOST
 * says otherwise; unknown paths get 404; a failing handler gets 500 without internals, and its
 * error goes to the log (with the path), so that an operator can see why.
 */
export async function startHttpServer(opts: { host: string; port: number; routes: Record<string, Route>; logger: Logger }): Promise<{ url: string; close(): Promise<void> }> {
  const log = opts.logger.child({ module: 'http' });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = opts.routes[path];
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    Promise.resolve(route(req, res)).catch((err: unknown) => {
      log.error({ err, method: req.method, path }, 'HTTP handler failed: answered 500');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export function metricsRoute(registry: Registry): Route {
  return async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    const body = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType }).end(body);
  };
}

/** A health probe: 200 `{"status":"ok"}`, or 503 with the reasons (for /health/live and /health/ready). */
export function healthRoute(check: () => { ready: boolean; reasons: readonly string[] }): Route {
  return (_req, res) => {
    const { ready, reasons } = check();
    const body = ready ? { status: 'ok' } : { status: 'unavailable', reasons };
    res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(body)}\n`);
  };
}
