// Errors of the identity area: the CA (CSR policy, plug-in key material, the gRPC service and its client)
// and the ztunnel's certificate manager. One code union, one class; callers branch on `code`, never on
// message text. Messages name the offending value (identity, file, SAN) but never keys or tokens.
import { FerryError } from '../errors.ts';

export const IDENTITY_ERROR_CODES = [
  // CSR validation (ca.ts / csr.ts): the requester sent something the CA will not sign.
  'FERRY_CA_CSR_MALFORMED', // not a PEM-encoded PKCS#10 request
  'FERRY_CA_CSR_BAD_SIGNATURE', // the CSR's self-signature does not verify with its own public key
  'FERRY_CA_CSR_NO_SAN', // no subjectAltName extension, or an empty one
  'FERRY_CA_CSR_MULTIPLE_SANS', // more than one SAN entry (an SVID carries exactly one URI SAN)
  'FERRY_CA_CSR_SAN_NOT_URI', // the single SAN is a DNS name, IP, email, ... instead of a URI
  'FERRY_CA_CSR_SAN_NOT_SPIFFE', // the URI SAN is not spiffe://<td>/ns/<ns>/sa/<sa>
  'FERRY_CA_CSR_HAS_COMMON_NAME', // the subject carries a CN (SVIDs have none)
  'FERRY_CA_CSR_KEY_NOT_P256', // subject key is not ECDSA P-256
  'FERRY_CA_WRONG_TRUST_DOMAIN', // the requested identity is in a trust domain this CA does not serve
  'FERRY_CA_IDENTITY_MISMATCH', // ImpersonatedIdentity metadata differs from the CSR's SAN, or is not a SPIFFE ID
  // Authorization of the caller (ca-server.ts).
  'FERRY_CA_UNAUTHENTICATED', // no bearer token, or one the CA does not know
  'FERRY_CA_IDENTITY_NOT_ON_NODE', // the calling node runs no pod with the requested identity
  'FERRY_CA_PERMISSION_DENIED', // any other refusal by the authorizer
  'FERRY_CA_OVERLOADED', // every signing slot busy and the queue full: shed with RESOURCE_EXHAUSTED (ca-admission.ts)
  // CA key material (ca.ts).
  'FERRY_CA_PLUGIN_FILE_MISSING', // a file of the cacerts layout cannot be read
  'FERRY_CA_PLUGIN_FILE_INVALID', // a file of the cacerts layout does not hold what it must (names file and problem)
  'FERRY_CA_PLUGIN_KEY_MISMATCH', // ca-key.pem is not the key of ca-cert.pem
  'FERRY_CA_PLUGIN_CHAIN_INVALID', // cert-chain.pem does not link ca-cert.pem to root-cert.pem
  'FERRY_CA_SIGNING_FAILED', // the CA could not build the certificate (a bug or a broken key)
  // CA client (ca-client.ts).
  'FERRY_CA_UNREACHABLE', // the CA did not answer (connect/TLS failure, UNAVAILABLE, deadline)
  'FERRY_CA_REQUEST_REFUSED', // the CA answered with an error status (its message says why)
  'FERRY_CA_RESPONSE_INVALID', // the CA's answer is empty, not PEM, does not chain, or holds another key
  'FERRY_CA_RESPONSE_IDENTITY_MISMATCH', // the returned leaf does not carry the requested identity
  'FERRY_CA_TOKEN_UNREADABLE', // --ca-token-file cannot be read or is empty (ca-token.ts)
  // Certificate manager (cert-manager.ts).
  'FERRY_CERT_FETCH_FAILED', // no certificate yet for this identity; the last fetch failed
  'FERRY_CERT_EXPIRED', // the certificate expired and renewal keeps failing
  'FERRY_CERT_MANAGER_CLOSED', // the certificate manager was closed
] as const;

export type IdentityErrorCode = (typeof IDENTITY_ERROR_CODES)[number];

export class IdentityError extends FerryError<IdentityErrorCode> {}

export type Result<T, E = IdentityError> = { ok: true; value: T } | { ok: false; error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail(code: IdentityErrorCode, message: string, cause?: unknown): { ok: false; error: IdentityError } {
  return { ok: false, error: new IdentityError(code, message, cause === undefined ? undefined : { cause }) };
}
