// The one error base of the project. Every area keeps its own list of codes (each listed in docs/errors.md,
// enforced by test/unit/architecture/errors-doc.test.ts) and a one-line subclass that fixes the code type; callers branch
// on `code`, never on message text. ProxyError lives here too: its codes are the data path's, shared by the
// identity (TLS refusals), mesh (load balancing), HBONE, ztunnel and waypoint layers.

export class FerryError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Narrowing helper for catch blocks and promise rejections. */
export function isFerryError(err: unknown): err is FerryError {
  return err instanceof FerryError;
}

export const PROXY_ERROR_CODES = [
  'FERRY_HBONE_BAD_REQUEST', // not a CONNECT, or malformed headers
  'FERRY_HBONE_BAD_AUTHORITY', // :authority not ip:port
  'FERRY_HBONE_IP_MISMATCH', // :authority IP differs from the dialed IP
  'FERRY_HBONE_UPSTREAM_STATUS', // peer answered CONNECT with a non-200 status
  'FERRY_HBONE_HANDSHAKE_FAILED', // TLS or HTTP/2 setup with the peer failed
  'FERRY_HBONE_PEER_IDENTITY_MISMATCH', // server's URI SAN is not one we expected
  'FERRY_HBONE_TRUST_DOMAIN_MISMATCH', // client certificate from another trust domain
  'FERRY_UNKNOWN_TARGET', // no local workload for the target address
  'FERRY_UNKNOWN_SOURCE', // outbound from an address that is no local workload
  'FERRY_NO_HEALTHY_UPSTREAM', // service has no usable endpoint
  'FERRY_UNKNOWN_PORT', // service port or named port cannot be resolved
  'FERRY_SELF_CALL', // target is one of our own proxy ports (loop guard)
  'FERRY_AUTHZ_DENIED', // explicitly denied by a DENY policy
  'FERRY_AUTHZ_NOT_ALLOWED', // ALLOW policies exist but none matched
  'FERRY_AUTHZ_LATE_REJECTION', // live connection closed after a policy change
  'FERRY_UPSTREAM_CONNECT_FAILED', // connect to the app or passthrough target failed
  'FERRY_NO_CERTIFICATE', // no certificate available for the source identity
  'FERRY_DRAINING', // process is shutting down
  'FERRY_SOCKS5_BAD_REQUEST', // malformed or unsupported SOCKS5 request
] as const;

export type ProxyErrorCode = (typeof PROXY_ERROR_CODES)[number];

export class ProxyError extends FerryError<ProxyErrorCode> {}
