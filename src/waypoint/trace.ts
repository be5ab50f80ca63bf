// W3C trace context at the waypoint: a valid incoming `traceparent` (version 00, non-zero ids) is kept,
// anything else is replaced by a new one, so every request leaving the waypoint carries a trace id.
import { randomBytes } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

export function ensureTraceparent(headers: Map<string, string[]>): { readonly traceId: string } {
  const current = headers.get('traceparent');
  const m = current?.length === 1 ? TRACEPARENT.exec(current[0] ?? '') : null;
  if (m !== null && !/^0+$/.test(m[1] ?? '') && !/^0+$/.test(m[2] ?? '')) return { traceId: m[1] ?? '' };
  const traceId = randomBytes(16).toString('hex');
  headers.set('traceparent', [`00-${traceId}-${randomBytes(8).toString('hex')}-01`]);
  return { traceId };
}
