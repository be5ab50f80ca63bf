// TLS material for HBONE (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "HBONE (wire contract)", "Identity"): TLS 1.3 only, ALPN h2,
// AES-128-GCM first, no SNI. Built once per identity and rotation (never per connection). The client
// verifies the chain against the trust bundle and then requires the server's URI SAN to equal one of the
// expected SPIFFE IDs exactly; the server requires a client certificate chained to the bundle and in its own
// trust domain, and leaves *which* identity to authorization. This module does no I/O.
import type { X509Certificate } from 'node:crypto';
import type { PeerCertificate, SecureContext, SecureContextOptions, TLSSocket } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { formatSpiffeId, type ParseResult, parseSpiffeId, type SpiffeId, sameSpiffeId } from './spiffe-id.ts';
import { classifyTlsErrorCode, TlsRefusedError } from './tls-refusal.ts';
import type { WorkloadCertificate } from './workload-certificate.ts';

export const HBONE_ALPN = ['h2'];
// AES-128-GCM first: cheapest on hardware with AES-NI, and what both ends negotiate with Istio's ztunnel.
const TLS13_CIPHERSUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384';

/** Options shared by client and server contexts; a server takes them for setSecureContext(). */
export interface HboneSecureContextOptions extends SecureContextOptions {
  readonly minVersion: 'TLSv1.3';
  readonly maxVersion: 'TLSv1.3';
}

export interface HboneTlsContexts {
  readonly identity: SpiffeId;
  /** One SecureContext per identity: reused by every client connection of this identity. */
  readonly secureContext: SecureContext;
  /** The same material as plain options, for tls.Server#setSecureContext (which builds its own context). */
  readonly contextOptions: HboneSecureContextOptions;
}

/** Builds the TLS material of one workload certificate. Call once per identity and per rotation. */
export function buildTlsContexts(cert: WorkloadCertificate): HboneTlsContexts {
  const contextOptions: HboneSecureContextOptions = {
    key: cert.privateKeyPem,
    cert: cert.certChainPem.join('\n'),
    ca: [...cert.rootsPem],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS13_CIPHERSUITES,
    honorCipherOrder: true,
  };
  return { identity: cert.identity, secureContext: createSecureContext(contextOptions), contextOptions };
}

/** Server-side tls options: client certificate required and chained to the bundle, ALPN h2 only. */
export function hboneServerTlsOptions(ctx: HboneTlsContexts): HboneSecureContextOptions & {
  readonly requestCert: true;
  readonly rejectUnauthorized: true;
  readonly ALPNProtocols: string[];
} {
  return { ...ctx.contextOptions, requestCert: true, rejectUnauthorized: true, ALPNProtocols: HBONE_ALPN };
}

/**
 * Client-side tls.connect options. No `servername`: Node sends no SNI when dialing an IP, and HBONE servers
 * pick their certificate by the dialed address, not SNI (docs/architecture.md "HBONE (wire contract)").
 */
export function hboneClientTlsOptions(
  ctx: HboneTlsContexts,
  expected: readonly SpiffeId[],
): {
  secureContext: SecureContext;
  ALPNProtocols: string[];
  rejectUnauthorized: true;
  minVersion: 'TLSv1.3';
  maxVersion: 'TLSv1.3';
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
} {
  return {
    secureContext: ctx.secureContext,
    ALPNProtocols: HBONE_ALPN,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    // Called only after the chain verified against the bundle; hostnames are irrelevant for SPIFFE peers.
    checkServerIdentity: (_host, cert) => checkExpectedIdentity(cert, expected),
  };
}

function checkExpectedIdentity(cert: PeerCertificate, expected: readonly SpiffeId[]): Error | undefined {
  const id = spiffeIdFromSubjectAltName(cert.subjectaltname);
  if (!id.ok) {
    return new TlsRefusedError(
      'FERRY_HBONE_PEER_IDENTITY_MISMATCH',
      'no-spiffe-id',
      null,
      `server certificate: ${id.error}`,
    );
  }
  if (expected.some((e) => sameSpiffeId(e, id.value))) return undefined;
  const want = expected.map(formatSpiffeId).join(', ');
  return new TlsRefusedError(
    'FERRY_HBONE_PEER_IDENTITY_MISMATCH',
    'unexpected-identity',
    null,
    `server identity ${formatSpiffeId(id.value)} is not one of the expected [${want}]`,
  );
}

/**
 * The SPIFFE ID of an SVID's subjectAltName string (Node's "URI:a, DNS:b" form). An SVID carries exactly
 * one URI SAN (SPIFFE X509-SVID §2); several, none, or a malformed one is an error.
 */
export function spiffeIdFromSubjectAltName(san: string | undefined): ParseResult<SpiffeId> {
  if (san === undefined || san === '') return { ok: false, error: 'no subjectAltName' };
  const uris = san
    .split(', ')
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice(4));
  if (uris.length !== 1) return { ok: false, error: `expected exactly one URI SAN, found ${uris.length}` };
  // Values with special characters come JSON-quoted; a SPIFFE ID never needs quoting, so parse fails on it.
  return parseSpiffeId(uris[0] ?? '');
}

/** The SPIFFE ID of a DER or PEM certificate. */
export function spiffeIdFromCertificate(cert: X509Certificate): ParseResult<SpiffeId> {
  return spiffeIdFromSubjectAltName(cert.subjectAltName);
}

/** The verified peer's SPIFFE ID (call after the handshake; the chain has been verified by then). */
export function peerSpiffeId(socket: TLSSocket): ParseResult<SpiffeId> {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return { ok: false, error: 'peer presented no certificate' };
  return spiffeIdFromCertificate(cert);
}

/**
 * Server-side check after the chain verified: the client must be a SPIFFE identity of our trust domain
 * (ztunnel's TrustDomainVerifier). Returns the peer identity, or a FERRY_HBONE_TRUST_DOMAIN_MISMATCH error
 * whose reason says which check failed (no-spiffe-id, wrong-trust-domain).
 */
export function verifyClientTrustDomain(
  socket: TLSSocket,
  trustDomain: string,
): { ok: true; value: SpiffeId } | { ok: false; error: TlsRefusedError } {
  if (!socket.authorized) {
    // Unreachable while the server rejects unauthorized clients in the handshake; kept as a second lock.
    const code = verifyErrorCode(socket.authorizationError);
    const reason = classifyTlsErrorCode(code);
    const refused = new TlsRefusedError(
      'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
      reason,
      code,
      `client certificate not authorized: ${code ?? 'no verify result'}`,
    );
    return { ok: false, error: refused };
  }
  const id = peerSpiffeId(socket);
  if (!id.ok) {
    const refused = new TlsRefusedError(
      'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
      'no-spiffe-id',
      null,
      `client certificate: ${id.error}`,
    );
    return { ok: false, error: refused };
  }
  if (id.value.trustDomain !== trustDomain) {
    const refused = new TlsRefusedError(
      'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
      'wrong-trust-domain',
      null,
      `client ${formatSpiffeId(id.value)} is not in trust domain ${trustDomain}`,
    );
    return { ok: false, error: refused };
  }
  return { ok: true, value: id.value };
}

/**
 * The verify code of a TLS socket's authorizationError: Node sets it to the code string (CERT_HAS_EXPIRED)
 * on servers, and to an Error carrying it in `code` elsewhere; null when there is none.
 */
export function verifyErrorCode(authorizationError: unknown): string | null {
  if (typeof authorizationError === 'string' && authorizationError !== '') return authorizationError;
  if (authorizationError instanceof Error) {
    const code = (authorizationError as { code?: unknown }).code;
    return typeof code === 'string' ? code : null;
  }
  return null;
}
