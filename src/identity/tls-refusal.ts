// Why an HBONE TLS handshake was refused, as one stable reason (docs/operations.md, "Refused TLS
// handshakes"). OpenSSL reports a failed chain verification as an X.509 verify code (Node's
// `authorizationError` or the socket error's `code`: CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, …),
// a failed handshake as an ERR_SSL_* code, a vanished peer as a socket errno; Ferry's own checks after the
// chain verified (SPIFFE URI SAN, trust domain, expected identity) name their reason directly. Pure.
import { ProxyError, type ProxyErrorCode } from '../errors.ts';

export const TLS_REFUSAL_REASONS = [
  'unknown-ca', // the chain does not lead to a root in our bundle
  'expired',
  'not-yet-valid',
  'bad-signature',
  'revoked',
  'invalid-certificate', // a chain that is malformed or not allowed (CA flags, purpose, path length)
  'no-certificate', // the peer presented none
  'no-spiffe-id', // verified, but not exactly one SPIFFE URI SAN
  'wrong-trust-domain', // verified, SPIFFE ID of another trust domain (server side)
  'unexpected-identity', // verified, SPIFFE ID none of the expected ones (client side)
  'protocol', // TLS version, ALPN, cipher suites, or not TLS at all
  'peer-closed', // the peer went away mid-handshake (often: it refused our certificate; its log says why)
  'connect-failed', // TCP never connected
  'timeout',
  'other',
] as const;

export type TlsRefusalReason = (typeof TLS_REFUSAL_REASONS)[number];

const BY_CODE: ReadonlyMap<string, TlsRefusalReason> = new Map<string, TlsRefusalReason>([
  // X.509 verify results (X509_V_ERR_* without the prefix, as Node reports them).
  ['CERT_HAS_EXPIRED', 'expired'],
  ['CERT_NOT_YET_VALID', 'not-yet-valid'],
  ['UNABLE_TO_GET_ISSUER_CERT', 'unknown-ca'],
  ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'unknown-ca'],
  ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unknown-ca'],
  ['SELF_SIGNED_CERT_IN_CHAIN', 'unknown-ca'],
  ['DEPTH_ZERO_SELF_SIGNED_CERT', 'unknown-ca'],
  ['CERT_UNTRUSTED', 'unknown-ca'],
  ['CERT_SIGNATURE_FAILURE', 'bad-signature'],
  ['UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'bad-signature'],
  ['UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'bad-signature'],
  ['CERT_REVOKED', 'revoked'],
  ['INVALID_CA', 'invalid-certificate'],
  ['INVALID_PURPOSE', 'invalid-certificate'],
  ['PATH_LENGTH_EXCEEDED', 'invalid-certificate'],
  ['CERT_CHAIN_TOO_LONG', 'invalid-certificate'],
  ['CERT_REJECTED', 'invalid-certificate'],
  ['INVALID_EXTENSION', 'invalid-certificate'],
  ['ERROR_IN_CERT_NOT_BEFORE_FIELD', 'invalid-certificate'],
  ['ERROR_IN_CERT_NOT_AFTER_FIELD', 'invalid-certificate'],
  // TLS alerts the peer sent us, and OpenSSL's handshake errors about certificates.
  ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED', 'expired'],
  ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'unknown-ca'],
  ['ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR', 'bad-signature'],
  ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED', 'revoked'],
  ['ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'invalid-certificate'],
  ['ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE', 'invalid-certificate'],
  ['ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'invalid-certificate'],
  ['ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE', 'no-certificate'],
  ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'no-certificate'],
  // The transport.
  ['ECONNRESET', 'peer-closed'],
  ['EPIPE', 'peer-closed'],
  ['ERR_STREAM_PREMATURE_CLOSE', 'peer-closed'],
  ['ECONNREFUSED', 'connect-failed'],
  ['EHOSTUNREACH', 'connect-failed'],
  ['ENETUNREACH', 'connect-failed'],
  ['EADDRNOTAVAIL', 'connect-failed'],
  ['ETIMEDOUT', 'connect-failed'],
  ['ABORT_ERR', 'timeout'],
  ['ERR_TLS_HANDSHAKE_TIMEOUT', 'timeout'],
]);

/**
 * The reason for an OpenSSL verify code, a Node TLS/socket error code, or none (the connection just
 * closed). Unknown ERR_SSL_* codes are protocol failures; anything else unknown is 'other'.
 */
export function classifyTlsErrorCode(code: string | null | undefined): TlsRefusalReason {
  if (code === null || code === undefined || code === '') return 'peer-closed';
  const known = BY_CODE.get(code);
  if (known !== undefined) return known;
  if (code.startsWith('ERR_SSL_')) return 'protocol';
  return 'other';
}

const DESCRIPTIONS: Readonly<Record<TlsRefusalReason, string>> = {
  'unknown-ca': 'certificate is not signed by a trusted root (unknown CA)',
  expired: 'certificate has expired',
  'not-yet-valid': 'certificate is not yet valid',
  'bad-signature': 'certificate signature does not verify',
  revoked: 'certificate is revoked',
  'invalid-certificate': 'certificate chain is not acceptable',
  'no-certificate': 'no certificate was presented',
  'no-spiffe-id': 'certificate has no single SPIFFE URI SAN',
  'wrong-trust-domain': 'certificate is from another trust domain',
  'unexpected-identity': 'certificate is not one of the expected identities',
  protocol: 'TLS protocol mismatch (HBONE needs TLS 1.3 with ALPN h2)',
  'peer-closed': 'the peer closed the connection during the handshake',
  'connect-failed': 'the TCP connection failed',
  timeout: 'the handshake timed out',
  other: 'the handshake failed',
};

/** One short human phrase per reason, for log messages. */
export function describeTlsRefusal(reason: TlsRefusalReason): string {
  return DESCRIPTIONS[reason];
}

/** A refused or failed HBONE handshake: the ProxyError code callers branch on, plus why. */
export class TlsRefusedError extends ProxyError {
  readonly reason: TlsRefusalReason;
  /** The OpenSSL or Node code it was classified from; null for Ferry's own identity checks. */
  readonly tlsCode: string | null;
  constructor(
    code: ProxyErrorCode,
    reason: TlsRefusalReason,
    tlsCode: string | null,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'TlsRefusedError';
    this.reason = reason;
    this.tlsCode = tlsCode;
  }
}
