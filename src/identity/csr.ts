// PKCS#10 certificate signing requests for SVIDs. createCsr (csr-request.ts) builds what a ztunnel sends
// (P-256 key, empty subject, one URI SAN); parseCsr turns an untrusted CSR PEM into a typed value after
// checking everything that does not depend on CA policy: encoding, self-signature, key type, no CN, exactly one SPIFFE URI SAN.
// Which trust domain and which identity a caller may get is decided by ca.ts, not here. Never throws on
// bad input: the result names what was wrong.
import { createPublicKey } from 'node:crypto';
import { fail, ok, type Result } from './errors.ts';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.ts';
import { type CryptoKey, EC_P256, x509 } from './x509.ts';

/** What workloads use to make their CSRs (node:crypto only); re-exported for tests and the CA's tools. */
export { type CreatedCsr, createCsr } from './csr-request.ts';

const OID_SUBJECT_ALT_NAME = '2.5.29.17'; // RFC 5280 §4.2.1.6

/** Largest CSR PEM we look at: a P-256 CSR with one SAN is ~600 bytes; this bounds hostile input. */
export const MAX_CSR_PEM_BYTES = 16 * 1024;

export interface ParsedCsr {
  /** The identity named by the CSR's only SAN. Not yet checked against any trust domain. */
  readonly identity: SpiffeId;
  /** The subject key, imported for certificate generation. */
  readonly publicKey: CryptoKey;
}

/** Parses and validates an incoming CSR PEM (everything but CA policy). */
export async function parseCsr(pem: string): Promise<Result<ParsedCsr>> {
  if (typeof pem !== 'string' || pem.length === 0) return fail('FERRY_CA_CSR_MALFORMED', 'CSR is empty');
  if (pem.length > MAX_CSR_PEM_BYTES) {
    return fail('FERRY_CA_CSR_MALFORMED', `CSR is ${pem.length} bytes; at most ${MAX_CSR_PEM_BYTES} accepted`);
  }
  const begin = pem.indexOf('-----BEGIN CERTIFICATE REQUEST-----');
  if (begin < 0 || pem.indexOf('-----END CERTIFICATE REQUEST-----', begin) < 0) {
    return fail('FERRY_CA_CSR_MALFORMED', 'CSR is not a PEM "CERTIFICATE REQUEST" block');
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem);
  } catch (err) {
    return fail('FERRY_CA_CSR_MALFORMED', `CSR does not parse as PKCS#10: ${messageOf(err)}`, err);
  }

  const key = checkSubjectKey(csr);
  if (!key.ok) return key;

  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch (err) {
    return fail('FERRY_CA_CSR_BAD_SIGNATURE', `CSR signature cannot be checked: ${messageOf(err)}`, err);
  }
  if (!signatureOk) return fail('FERRY_CA_CSR_BAD_SIGNATURE', 'CSR signature does not verify with its own key');

  const commonNames = safeFields(csr, 'CN');
  if (commonNames.length > 0) {
    return fail(
      'FERRY_CA_CSR_HAS_COMMON_NAME',
      `CSR subject has CN=${JSON.stringify(commonNames[0])}; SVIDs carry none`,
    );
  }

  const identity = checkSan(csr);
  if (!identity.ok) return identity;

  let publicKey: CryptoKey;
  try {
    publicKey = await csr.publicKey.export(EC_P256, ['verify']);
  } catch (err) {
    return fail('FERRY_CA_CSR_KEY_NOT_P256', `CSR public key cannot be imported as P-256: ${messageOf(err)}`, err);
  }
  return ok({ identity: identity.value, publicKey });
}

function checkSubjectKey(csr: x509.Pkcs10CertificateRequest): Result<true> {
  try {
    // node:crypto reads the SPKI reliably for every key type, so the message can name what was sent.
    const key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return ok(true);
    const what = key.asymmetricKeyType === 'ec' ? `EC ${curve ?? 'unknown curve'}` : String(key.asymmetricKeyType);
    return fail('FERRY_CA_CSR_KEY_NOT_P256', `CSR key is ${what}; ECDSA P-256 required`);
  } catch (err) {
    return fail('FERRY_CA_CSR_KEY_NOT_P256', `CSR public key does not parse: ${messageOf(err)}`, err);
  }
}

function checkSan(csr: x509.Pkcs10CertificateRequest): Result<SpiffeId> {
  let sans: readonly x509.GeneralName[] = [];
  try {
    const exts = csr.extensions.filter((e) => e.type === OID_SUBJECT_ALT_NAME);
    if (exts.length > 1) return fail('FERRY_CA_CSR_MULTIPLE_SANS', 'CSR has more than one subjectAltName extension');
    const ext = exts[0];
    if (ext !== undefined) sans = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items;
  } catch (err) {
    return fail('FERRY_CA_CSR_MALFORMED', `CSR subjectAltName does not parse: ${messageOf(err)}`, err);
  }
  if (sans.length === 0) return fail('FERRY_CA_CSR_NO_SAN', 'CSR has no subjectAltName; one spiffe:// URI required');
  if (sans.length > 1) {
    const list = sans.map((n) => `${n.type}:${n.value}`).join(', ');
    return fail('FERRY_CA_CSR_MULTIPLE_SANS', `CSR has ${sans.length} SANs (${list}); exactly one URI required`);
  }
  const san = sans[0] as x509.GeneralName;
  if (san.type !== 'url') {
    return fail('FERRY_CA_CSR_SAN_NOT_URI', `CSR SAN is ${san.type}:${san.value}; a spiffe:// URI is required`);
  }
  const parsed = parseSpiffeId(san.value);
  if (!parsed.ok) return fail('FERRY_CA_CSR_SAN_NOT_SPIFFE', `CSR URI SAN is not an Istio SPIFFE ID: ${parsed.error}`);
  return ok(parsed.value);
}

function safeFields(csr: x509.Pkcs10CertificateRequest, field: string): string[] {
  try {
    return csr.subjectName.getField(field);
  } catch {
    return []; // an unreadable subject is not a CN; the signature already covers the bytes
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
