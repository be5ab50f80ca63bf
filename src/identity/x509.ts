// X.509 building blocks on WebCrypto (@peculiar/x509): P-256 keys, PEM conversion, SVID and CA certificate
// generation. All async (no sync keygen on the request path). Policy decisions (who may get what) live in
// ca.ts; this module only builds well-formed certificates.
import 'reflect-metadata'; // @peculiar/x509's DI container needs it loaded first
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { formatSpiffeId, type SpiffeId } from './spiffe-id.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export type CryptoKey = webcrypto.CryptoKey;
export type KeyPair = webcrypto.CryptoKeyPair;

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
/** What an issuer signs with (ECDSA/RSA with a hash), in @peculiar/x509's terms. */
export type SigningAlgorithm = Parameters<typeof x509.X509CertificateGenerator.create>[0]['signingAlgorithm'];

export async function generateP256KeyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as KeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

export interface CaCertificateParams {
  readonly keys: KeyPair;
  readonly commonName: string;
  readonly organization: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** A self-signed root, as Istio's self-signed CA makes (O=<trust domain>). */
export async function createSelfSignedRoot(p: CaCertificateParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `O=${p.organization}, CN=${p.commonName}`,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    signingAlgorithm: ECDSA_SHA256,
    keys: p.keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(p.keys.publicKey),
    ],
  });
}

export interface SvidParams {
  readonly identity: SpiffeId;
  readonly subjectPublicKey: CryptoKey;
  readonly issuerCertificate: x509.X509Certificate;
  readonly issuerKey: CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** How the issuer signs; defaults to ECDSA with SHA-256 (a P-256 issuer key). */
  readonly signingAlgorithm?: SigningAlgorithm;
}

/**
 * A workload certificate: empty subject, exactly one URI SAN (critical, since the subject is empty:
 * RFC 5280 §4.2.1.6), server and client auth, not a CA.
 */
export async function createSvid(p: SvidParams): Promise<x509.X509Certificate> {
  return createLeaf(p, {
    keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    extendedKeyUsage: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    names: [{ type: 'url', value: formatSpiffeId(p.identity) }],
  });
}

interface LeafParams {
  readonly subjectPublicKey: CryptoKey;
  readonly issuerCertificate: x509.X509Certificate;
  readonly issuerKey: CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly signingAlgorithm?: SigningAlgorithm;
}

interface LeafUsage {
  readonly keyUsage: number;
  readonly extendedKeyUsage: readonly string[];
  readonly names: x509.JsonGeneralNames;
}

/** An end-entity certificate with an empty subject: its names live in a critical SAN (RFC 5280 §4.2.1.6). */
async function createLeaf(p: LeafParams, usage: LeafUsage): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: p.issuerCertificate.subject,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    signingAlgorithm: p.signingAlgorithm ?? ECDSA_SHA256,
    publicKey: p.subjectPublicKey,
    signingKey: p.issuerKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usage.keyUsage, true),
      new x509.ExtendedKeyUsageExtension([...usage.extendedKeyUsage]),
      new x509.SubjectAlternativeNameExtension(usage.names, true),
      await x509.AuthorityKeyIdentifierExtension.create(p.issuerCertificate.publicKey),
    ],
  });
}

export { x509 };

export interface IntermediateCaParams extends CaCertificateParams {
  readonly issuerCertificate: x509.X509Certificate;
  readonly issuerKey: CryptoKey;
}

/** A signing CA below a root (the shape of Istio's plug-in `ca-cert.pem`): CA, path length 0. */
export async function createIntermediateCa(p: IntermediateCaParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `O=${p.organization}, CN=${p.commonName}`,
    issuer: p.issuerCertificate.subject,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    signingAlgorithm: ECDSA_SHA256,
    publicKey: p.keys.publicKey,
    signingKey: p.issuerKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(p.keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(p.issuerCertificate.publicKey),
    ],
  });
}

export interface ServingCertificateParams {
  readonly subjectPublicKey: CryptoKey;
  readonly issuerCertificate: x509.X509Certificate;
  readonly issuerKey: CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly signingAlgorithm?: SigningAlgorithm;
}

/** A TLS server certificate for a control-plane endpoint (the CA's own gRPC port): DNS/IP SANs, serverAuth. */
export async function createServingCertificate(p: ServingCertificateParams): Promise<x509.X509Certificate> {
  return createLeaf(p, {
    keyUsage: x509.KeyUsageFlags.digitalSignature,
    extendedKeyUsage: [x509.ExtendedKeyUsage.serverAuth],
    names: [
      ...p.dnsNames.map((value) => ({ type: 'dns' as const, value })),
      ...p.ipAddresses.map((value) => ({ type: 'ip' as const, value })),
    ],
  });
}
