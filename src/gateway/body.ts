import type http from 'node:http';

export type BodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly tooLarge: true };

/**
 * Reads a request body of at most `maxBytes`. A declared Content-Length beyond the limit is
 * refused before a byte is read; a body that grows beyond it is refused as soon as it does
 * (the caller answers 413 and closes the connection, so the rest is never read).
 */
export function readBody(req: http.IncomingMessage, maxBytes: number): Promise<BodyResult> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.resolve({ ok: false, tooLarge: true });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (r: BodyResult) => {
      if (done) return;
      done = true;
      req.off('data', onData);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.pause();
        finish({ ok: false, tooLarge: true });
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => finish({ ok: true, body: Buffer.concat(chunks, size) }));
    // A client that goes away mid-body: nothing of the request was read whole, nothing is published.
    const gone = (err?: Error) => {
      if (done) return;
      done = true;
      reject(err ?? new Error('the client closed the connection before the body ended'));
    };
    req.once('error', gone);
    req.once('close', () => gone());
  });
}

/** The media type of a Content-Type header, lower-case, without parameters; and its charset. */
export function mediaType(header: string | undefined): { type: string; charset: string | undefined } {
  const [type = '', ...params] = (header ?? '').split(';');
  const charset = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('charset='))?.slice('charset='.length).replace(/"/g, '');
  return { type: type.trim().toLowerCase(), charset };
}
