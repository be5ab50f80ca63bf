// W3C trace context at the waypoint: a valid incoming `traceparent` (version 00, non-zero ids) is kept,
// anything else is replaced by a new one, so every request leaving the waypoint carries a trace id.
import { randomFillSync } from 'node:crypto';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/;

// New ids come from a pool of random bytes refilled 4 KiB at a time: two randomBytes() calls per request
// were 5 % of the waypoint's busy time (docs/performance.md, waypoint profile).
const POOL = Buffer.alloc(4096);
let offset = POOL.length;

function randomHex(bytes: number): string {
  if (offset + bytes > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const hex = POOL.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

export function ensureTraceparent(headers: Map<string, string[]>): { readonly traceId: string } {
  const current = headers.get('traceparent');
  const m = current?.length === 1 ? TRACEPARENT.exec(current[0] ?? '') : null;
  if (m !== null && !/^0+$/.test(m[1] ?? '') && !/^0+$/.test(m[2] ?? '')) return { traceId: m[1] ?? '' };
  let traceId = randomHex(16);
  let spanId = randomHex(8);
  // All-zero ids are invalid (W3C trace context §3.2.2.3, §3.2.2.4); 2^-64 odds, but never send one.
  while (/^0+$/.test(traceId)) traceId = randomHex(16);
  while (/^0+$/.test(spanId)) spanId = randomHex(8);
  headers.set('traceparent', [`00-${traceId}-${spanId}-01`]);
  return { traceId };
}
