// Builds the PKCS#10 request a ztunnel or waypoint sends to the CA (RFC 2986) with node:crypto alone: a
// fresh P-256 key, empty subject, one critical URI SAN (the SPIFFE ID), ECDSA with SHA-256. Kept apart
// from csr.ts (which parses untrusted CSRs with the X.509 library) so the workloads never load that
// library, its DI container and reflect-metadata (≈ 10 MiB of RSS; docs/performance.md, issue 12).
import { generateKeyPair, type KeyObject, sign } from 'node:crypto';
import { promisify } from 'node:util';
import {
  bitString,
  boolean,
  contextTag,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  toPem,
} from './der.ts';
import { formatSpiffeId, type SpiffeId } from './spiffe-id.ts';

const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2'; // RFC 5758 §3.2
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14'; // PKCS#9 extensionRequest
const OID_SUBJECT_ALT_NAME = '2.5.29.17'; // RFC 5280 §4.2.1.6
const GENERAL_NAME_URI = 6; // GeneralName uniformResourceIdentifier [6] IA5String

const generateKeyPairAsync = promisify(generateKeyPair);
const signAsync = promisify(sign);

export interface CreatedCsr {
  readonly csrPem: string;
  /** PKCS#8 PEM of the key the CSR was made for: it never leaves the requester. */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo (DER) of that key, to check the issued certificate against. */
  readonly publicKeySpki: Buffer;
}

/** A fresh P-256 key and a CSR for `identity`: empty subject (no CN), one URI SAN. */
export async function createCsr(identity: SpiffeId): Promise<CreatedCsr> {
  const { publicKey, privateKey } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = certificationRequestInfo(spki, formatSpiffeId(identity));
  const signature = await signAsync('sha256', info, privateKey as KeyObject); // DER Ecdsa-Sig-Value
  const der = sequence(info, sequence(objectIdentifier(OID_ECDSA_WITH_SHA256)), bitString(signature));
  return {
    csrPem: toPem(der, 'CERTIFICATE REQUEST'),
    privateKeyPem: String(privateKey.export({ type: 'pkcs8', format: 'pem' })),
    publicKeySpki: spki,
  };
}

function certificationRequestInfo(spki: Buffer, uri: string): Buffer {
  // SAN is critical because the subject is empty (RFC 5280 §4.2.1.6), as Istio's CSRs have it.
  const generalNames = sequence(contextTag(GENERAL_NAME_URI, false, Buffer.from(uri, 'ascii')));
  const san = sequence(objectIdentifier(OID_SUBJECT_ALT_NAME), boolean(true), octetString(generalNames));
  const extensionRequest = sequence(objectIdentifier(OID_EXTENSION_REQUEST), set(sequence(san)));
  const emptySubject = sequence();
  return sequence(smallInteger(0), emptySubject, spki, contextTag(0, true, extensionRequest));
}
