// HBONE CONNECT request headers (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "HBONE (wire contract)"): authority-form CONNECT
// (no :scheme/:path), `baggage`, `forwarded: for="ip:port"[;host=svc]` and a W3C `traceparent` that traces
// the proxied connection, random per connection. Pure apart from the random trace ids.
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { IpPort } from '../mesh/ip-addr.ts';
import { formatIpPort } from './authority.ts';

/** What an HBONE client says about the proxied connection, beyond the authority. */
export interface HboneRequestHeaders {
  readonly baggage?: string;
  /** The original client of the proxied connection (`forwarded: for=`). */
  readonly forwardedFor?: IpPort;
  /** The destination service hostname, when known (`forwarded: ...;host=`). */
  readonly forwardedHost?: string;
  /** A W3C traceparent; a random one is made when absent. */
  readonly traceparent?: string;
}

/** What an HBONE server reads from a CONNECT request (raw values: untrusted, informational). */
export interface HboneReceivedHeaders {
  readonly baggage: string | undefined;
  readonly forwarded: string | undefined;
  readonly traceparent: string | undefined;
}

/** RFC 7239 `forwarded` value as ztunnel sends it: for="ip:port"[;host=svc]. */
export function formatForwarded(forwardedFor: IpPort, host?: string): string {
  const forPart = `for="${formatIpPort(forwardedFor)}"`;
  return host === undefined ? forPart : `${forPart};host=${host}`;
}

/** A fresh W3C traceparent: version 00, random trace and parent ids, sampled flag. */
export function newTraceparent(): string {
  const bytes = randomBytes(24);
  return `00-${bytes.toString('hex', 0, 16)}-${bytes.toString('hex', 16, 24)}-01`;
}

/** The CONNECT request headers for one tunnel. */
export function buildConnectHeaders(authority: string, h: HboneRequestHeaders): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ':method': 'CONNECT',
    ':authority': authority,
    traceparent: h.traceparent ?? newTraceparent(),
  };
  if (h.baggage !== undefined) headers.baggage = h.baggage;
  if (h.forwardedFor !== undefined) headers.forwarded = formatForwarded(h.forwardedFor, h.forwardedHost);
  return headers;
}

/** The informational headers of a received CONNECT (first value of each; never used for policy). */
export function readConnectHeaders(headers: IncomingHttpHeaders): HboneReceivedHeaders {
  return {
    baggage: first(headers.baggage),
    forwarded: first(headers.forwarded),
    traceparent: first(headers.traceparent),
  };
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
