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

export async function generateP256KeyPair(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as KeyPair;
}

export async function privateKeyToPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function importP256PrivateKeyPem(pem: string): Promise<CryptoKey> {
  const [der] = x509.PemConverter.decode(pem);
  if (der === undefined) throw new TypeError('no PEM block found in private key');
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, true, ['sign']);
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
}

/**
 * A workload certificate: empty subject, exactly one URI SAN (critical, since the subject is empty:
 * RFC 5280 §4.2.1.6), server and client auth, not a CA.
 */
export async function createSvid(p: SvidParams): Promise<x509.X509Certificate> {
  return x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: '',
    issuer: p.issuerCertificate.subject,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    signingAlgorithm: ECDSA_SHA256,
    publicKey: p.subjectPublicKey,
    signingKey: p.issuerKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: formatSpiffeId(p.identity) }], true),
      await x509.AuthorityKeyIdentifierExtension.create(p.issuerCertificate.publicKey),
    ],
  });
}

export { x509 };
