// gRPC answers the waypoint gives itself on a Service port where a GRPCRoute applies (docs/architecture.md,
// "GRPCRoute"): a gRPC client reads the outcome of a call from `grpc-status`, not from the HTTP status, so
// local outcomes are sent as "Trailers-Only" responses (HTTP 200, `content-type: application/grpc`,
// `grpc-status`, `grpc-message`, one HEADERS frame with END_STREAM). The spec's rule for an unresolved
// backend's share is gRPC UNAVAILABLE (GRPCRouteRule.backendRefs); no matching rule is UNIMPLEMENTED, as a
// gRPC server answers an unknown method.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/** The gRPC status codes the waypoint answers with (grpc/doc/statuscodes.md). */
export const GRPC_STATUS = {
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
} as const;

/** A gRPC request: `application/grpc`, `application/grpc+proto`, … but not gRPC-Web (its own framing). */
export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc(?:[+;]|$)/i.test(contentType);
}

/** The gRPC status for an HTTP status the waypoint would have answered with. */
export function grpcStatusFor(httpStatus: number): number {
  switch (httpStatus) {
    case 404:
      return GRPC_STATUS.UNIMPLEMENTED;
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED;
    case 500: // unresolved backend, no backend: the spec says UNAVAILABLE
    case 502:
    case 503:
      return GRPC_STATUS.UNAVAILABLE;
    case 504:
      return GRPC_STATUS.DEADLINE_EXCEEDED;
    default:
      return GRPC_STATUS.UNKNOWN;
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Responses"): printable ASCII except `%` kept. */
export function encodeGrpcMessage(text: string): string {
  return Array.from(Buffer.from(text, 'utf8'), (b) =>
    b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
  ).join('');
}

/** Sends a Trailers-Only gRPC response on an HTTP/2 stream; returns the gRPC status sent. */
export function replyGrpcStatus(res: Http2ServerResponse, httpStatus: number, text: string): number {
  const code = grpcStatusFor(httpStatus);
  const headers = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(code),
    'grpc-message': encodeGrpcMessage(text),
  };
  const stream = res.stream;
  if (stream.destroyed || stream.headersSent) {
    res.destroy();
    return code;
  }
  stream.respond(headers, { endStream: true });
  return code;
}

/**
 * Relays an upstream Trailers-Only gRPC response (`grpc-status` already in the response headers: the
 * backend ended the call without messages) as Trailers-Only: HEADERS with END_STREAM. Written as headers
 * plus an empty DATA frame, gRPC clients would read `grpc-status` as metadata and then find no trailers.
 */
export function relayTrailersOnly(res: Http2ServerResponse, status: number, headers: OutgoingHttpHeaders): void {
  const stream = res.stream;
  if (stream.destroyed || stream.headersSent) {
    res.destroy();
    return;
  }
  stream.respond({ ...headers, ':status': status }, { endStream: true });
}
