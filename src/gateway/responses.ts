import type http from 'node:http';

/** Every JSON answer of the gateway goes through here (errors are `{ "error": "…" }`). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
}

export function sendError(res: http.ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error }, headers);
}

/**
 * An error answered before the body was read (or while it was too big to read): the connection
 * is closed after the answer, so an unread body cannot be taken for the next request.
 */
export function sendErrorAndClose(res: http.ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  sendError(res, status, error, { connection: 'close', ...headers });
}
