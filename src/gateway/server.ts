import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../runtime/logger';
import type { GatewayMetrics } from '../runtime/metrics';
import { postEvents, type EventsRouteDeps } from './events-route';
import type { KeyCache } from './key-cache';
import type { KeyRateLimiter } from './rate-limit';
import { sendErrorAndClose, sendJson } from './responses';
import { getPeriodUsage, getUsage, type UsageRouteDeps } from './usage-routes';

export interface GatewayTimeouts {
  /** A client must send its whole request head within this (slow clients, slowloris). */
  readonly headersTimeoutMs: number;
  /** …and its whole request within this. */
  readonly requestTimeoutMs: number;
}

export interface GatewayDeps extends Omit<EventsRouteDeps, 'metrics' | 'logger'>, UsageRouteDeps {
  readonly host: string;
  readonly port: number;
  readonly keys: KeyCache;
  readonly rateLimiter: KeyRateLimiter;
  readonly timeouts: GatewayTimeouts;
  readonly openapi: unknown;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

/** `tenant` is the API key's (empty for the routes without `auth`). */
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, tenant: string) => Promise<void> | void;
interface Route {
  readonly method: 'GET' | 'POST';
  readonly auth: boolean;
  readonly handle: Handler;
}

/**
 * The HTTP gateway: stateless (any number behind a load balancer; keys and usage live in
 * ClickHouse, events go to Kafka). Per request: route → API key (401) → rate limit (429) →
 * the route. Any failure of a handler is a 500 without internals; the server keeps serving.
 * The Authorization header is never logged (the logger also censors it by name).
 */
export async function startGateway(deps: GatewayDeps): Promise<Gateway> {
  const routes: Record<string, Route> = {
    '/v1/events': { method: 'POST', auth: true, handle: (req, res, _url, tenant) => postEvents(req, res, tenant, deps) },
    '/v1/usage': { method: 'GET', auth: true, handle: (_req, res, url, tenant) => getUsage(url, res, tenant, deps) },
    '/v1/usage/period': { method: 'GET', auth: true, handle: (_req, res, url, tenant) => getPeriodUsage(url, res, tenant, deps) },
    '/openapi.json': { method: 'GET', auth: false, handle: (_req, res) => sendJson(res, 200, deps.openapi) },
    '/health/live': { method: 'GET', auth: false, handle: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    '/metrics': {
      method: 'GET',
      auth: false,
      handle: async (_req, res) => {
        const text = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType }).end(text);
      },
    },
  };
  const log = deps.logger.child({ module: 'gateway' });

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, route: Route) => {
    if (!route.auth) return route.handle(req, res, url, '');
    const auth = deps.keys.authenticate(req.headers.authorization);
    if (!auth.ok) return sendErrorAndClose(res, auth.status, auth.reason, auth.status === 401 ? { 'www-authenticate': 'Bearer' } : { 'retry-after': '1' });
    const wait = deps.rateLimiter.take(auth.keyId);
    if (wait > 0) return sendErrorAndClose(res, 429, `rate limit of this API key exceeded: retry in ${wait} s`, { 'retry-after': String(wait) });
    return route.handle(req, res, url, auth.tenant);
  };

  const server = http.createServer({ headersTimeout: deps.timeouts.headersTimeoutMs, requestTimeout: deps.timeouts.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, deps.timeouts.headersTimeoutMs) }, (req, res) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? '/', 'http://gateway');
    const route = routes[url.pathname];
    const label = route ? url.pathname : 'other';
    res.once('finish', () => {
      deps.metrics.requests.inc({ route: label, status: String(res.statusCode) });
      deps.metrics.requestDuration.observe({ route: label }, Number(process.hrtime.bigint() - started) / 1e9);
      log.debug({ method: req.method, url: req.url, status: res.statusCode }, 'request');
    });
    if (!route) return sendErrorAndClose(res, 404, `no such resource: ${req.method} ${url.pathname.slice(0, 200)}`);
    if (req.method !== route.method) return sendErrorAndClose(res, 405, `${url.pathname} takes ${route.method}`, { allow: route.method });
    handle(req, res, url, route).catch((err: unknown) => {
      // A client that went away is not the gateway's failure; anything else is a 500 without internals.
      if (req.destroyed && !res.headersSent) return log.debug({ route: label }, 'client went away mid-request');
      log.error({ err, route: label }, 'request failed');
      sendErrorAndClose(res, 500, 'internal error');
    });
  });
  // Bad request lines, oversized headers and timed-out heads: a plain 400/408/431, then close.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({ error: status === 408 ? 'request timed out' : status === 431 ? 'request headers too large' : 'malformed HTTP request' });
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
