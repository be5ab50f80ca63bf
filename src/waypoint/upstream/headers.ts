// Header conversion between the pipeline's HeaderMap and node:http/http2 header objects, shared by the
// HTTP/1.1 and HTTP/2 upstream clients: hop-by-hop fields stop at the proxy (RFC 9110 §7.6.1).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { HeaderMap } from './types.ts';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

export function toOutgoingHeaders(headers: HeaderMap): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, values] of headers) {
    if (HOP_BY_HOP.has(name) || name.startsWith(':')) continue;
    out[name] = values.length === 1 ? values[0] : [...values];
  }
  return out;
}

export function fromIncomingHeaders(headers: IncomingHttpHeaders): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue;
    // `te: trailers` survives (HTTP/2 and gRPC need it); every other hop-by-hop header stops here.
    if (name === 'te' && String(value).toLowerCase().includes('trailers')) out.set('te', ['trailers']);
    if (HOP_BY_HOP.has(name)) continue;
    out.set(name, Array.isArray(value) ? value : [value]);
  }
  return out;
}
