// The byte-level side of a waypoint request: reading the request body (buffered when small enough to be
// sent again on a retry), writing response headers without hop-by-hop fields, streaming the upstream
// body back with backpressure.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Readable } from 'node:stream';
import type { HeaderMap } from '../../gateway-api/filters.ts';

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

/** Bodies up to this size are buffered so that a retry can send them again; larger ones stream once. */
export const MAX_BUFFERED_BODY = 1024 * 1024;

export function headerValue(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

const RESPONSE_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

export function toResponseHeaders(headers: HeaderMap, extra: ReadonlyMap<string, string>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of headers) {
    if (RESPONSE_HOP.has(k)) continue;
    out[k] = v.length === 1 ? v[0] : [...v];
  }
  for (const [k, v] of extra) out[k] = v;
  return out;
}

function isHttp2(req: DownstreamRequest): boolean {
  return (req as { httpVersionMajor?: number }).httpVersionMajor === 2;
}

/** The request body: buffered when small enough to be sent again, else the stream itself. */
export async function readBody(req: DownstreamRequest): Promise<Buffer | Readable> {
  const length = Number(req.headers['content-length'] ?? 'NaN');
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && length === 0) return Buffer.alloc(0);
  if (!chunked && Number.isNaN(length) && (req.method === 'GET' || req.method === 'HEAD') && !isHttp2(req)) {
    return Buffer.alloc(0);
  }
  if (!Number.isNaN(length) && length > MAX_BUFFERED_BODY) return req as Readable;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > MAX_BUFFERED_BODY * 16) throw new Error('request body too large');
  }
  return Buffer.concat(chunks);
}

/**
 * Streams `body` into `res`; resolves when done or either side went away, with the trailers it relayed
 * (read once, at the body's end), or null when it relayed none.
 */
export function pipeBody(
  body: Readable,
  res: DownstreamResponse,
  onBytes: (n: number) => void,
  trailers?: () => HeaderMap,
): Promise<HeaderMap | null> {
  return new Promise((resolve) => {
    body.on('data', (chunk: Buffer) => {
      onBytes(chunk.length);
      if (!(res as ServerResponse).write(chunk)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.once('end', () => {
      const t = trailers?.() ?? null;
      if (t !== null && t.size > 0) {
        const out: Record<string, string> = {};
        for (const [k, v] of t) out[k] = v.join(',');
        res.addTrailers(out);
      }
      res.end();
      resolve(t);
    });
    body.once('error', () => {
      res.destroy();
      resolve(null);
    });
    res.once('close', () => {
      body.destroy();
      resolve(null);
    });
  });
}
