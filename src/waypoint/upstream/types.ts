// The waypoint's upstream side as the request pipeline sees it (docs/architecture.md "How a connection flows through the code" step 6): one HTTP request
// sent to a chosen pod, over HBONE (`:authority=podIP:targetPort`) or plain TCP for a pod outside the mesh,
// as HTTP/1.1 or HTTP/2, with Gateway API retries and timeouts around it. Types, and the error it fails with.

import type { Readable } from 'node:stream';
import type { RetryPolicy, RouteTimeouts } from '../../../gateway-api/types.ts';
import { FerryError } from '../../errors.ts';
import type { SpiffeId } from '../../identity/spiffe-id.ts';
import type { Workload } from '../../mesh/types.ts';

export type UpstreamProtocol = 'http1' | 'http2';

/** One pod to send to. */
export interface UpstreamEndpoint {
  /** The pod IP and the target port the app listens on (the HTTP destination). */
  readonly ip: string;
  readonly port: number;
  /** HBONE to `ip:hbonePort` presenting the waypoint's SVID and expecting `identity`; or plain TCP. */
  readonly tunnel:
    | { readonly kind: 'hbone'; readonly hbonePort: number; readonly identity: SpiffeId }
    | { readonly kind: 'plain' };
  /** For metrics and access logs; null when the address is not a known workload. */
  readonly workload: Workload | null;
}

/** Lower-cased header name → values. Never hop-by-hop headers (connection, keep-alive, te, ...) or pseudo-headers. */
export type HeaderMap = ReadonlyMap<string, readonly string[]>;

export interface UpstreamRequest {
  readonly method: string;
  /** Path and query, as sent upstream (after URLRewrite). */
  readonly path: string;
  /** Host (HTTP/1.1) or :authority (HTTP/2) to send. */
  readonly authority: string;
  readonly headers: HeaderMap;
  /**
   * A Buffer can be re-sent, so the request may be retried; a stream cannot (sent once, retries disabled);
   * null = no body.
   */
  readonly body: Buffer | Readable | null;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly headers: HeaderMap;
  /** Streamed to the client; consume or destroy it. */
  readonly body: Readable;
  /** HTTP/2 trailers arrive on body end (gRPC status); HTTP/1.1 chunked trailers likewise. */
  readonly trailers: () => HeaderMap;
  readonly endpoint: UpstreamEndpoint;
}

/** Envoy-style response flags the access log and metrics report. */
export type UpstreamFailureFlag =
  /** no healthy endpoint */
  | 'UH'
  /** connection failure (dial, TLS, HBONE refused) */
  | 'UF'
  /** upstream reset / closed before a response */
  | 'UC'
  /** request timeout (`timeouts.request`) */
  | 'UT'
  /** retries exhausted on connection errors or per-try timeouts */
  | 'URX';

export type SendResult =
  | {
      readonly kind: 'response';
      readonly response: UpstreamResponse;
      /** Retries made (0 = the first try answered). */
      readonly retries: number;
    }
  | {
      readonly kind: 'failure';
      /** 503 (UH, UF, UC, URX) or 504 (UT, or the last try timed out). */
      readonly status: 503 | 504;
      readonly flag: UpstreamFailureFlag;
      readonly retries: number;
      /** The endpoint of the last attempt, when there was one. */
      readonly endpoint: UpstreamEndpoint | null;
      readonly message: string;
    };

export interface SendOptions {
  readonly protocol: UpstreamProtocol;
  readonly timeouts: RouteTimeouts;
  readonly retry: RetryPolicy | null;
  /** Called before each attempt (a retry may land on another pod of the same backend); null = no endpoint. */
  readonly pickEndpoint: () => UpstreamEndpoint | null;
  /** Aborted when the downstream client goes away: in-flight attempts are cancelled. */
  readonly signal: AbortSignal;
}

/** A failed upstream exchange: the connection could not be made, or the peer reset it. */
export class UpstreamError extends FerryError<'FERRY_UPSTREAM_CONNECT_FAILED' | 'FERRY_UPSTREAM_RESET'> {}
