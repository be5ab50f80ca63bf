// Loads CA key material from Istio's plug-in `cacerts` layout (ca-cert.pem, ca-key.pem, root-cert.pem,
// cert-chain.pem) so a cluster migrating off Istio keeps one root of trust (docs/architecture.md "Identity"). Checks
// everything once at startup and names the file and the problem; nothing is half-loaded. The signing key
// may be EC (P-256/P-384; PKCS#8 or SEC1 "EC PRIVATE KEY") or RSA, since Istio plug-in CAs are often RSA.
import { createPrivateKey, createPublicKey, type KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IdentityError } from './errors.ts';
import { type CryptoKey, type SigningAlgorithm, x509 } from './x509.ts';

export const PLUGIN_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;

export interface SigningMaterial {
  readonly signingCert: x509.X509Certificate;
  readonly signingKey: CryptoKey;
  readonly signingAlgorithm: SigningAlgorithm;
  /** From the signing cert up to and including a root: what follows the leaf in every issued chain. */
  readonly chainPem: readonly string[];
  /** The trust bundle (root-cert.pem may hold several roots while a root is being rotated). */
  readonly rootsPem: readonly string[];
}

const CERT_BLOCK_RE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The four PEM texts of Istio's plug-in layout, by file (or Secret key) name. */
export interface PluginPem {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly rootCertPem: string;
  readonly certChainPem: string;
}

/** Reads and checks the four files in `dir`. Throws IdentityError FERRY_CA_PLUGIN_* naming file and problem. */
export async function loadPluginMaterial(dir: string, nowMs: number): Promise<SigningMaterial> {
  const [caCertPem, caKeyPem, rootCertPem, certChainPem] = await Promise.all([
    readPluginFile(dir, PLUGIN_FILES.caCert),
    readPluginFile(dir, PLUGIN_FILES.caKey),
    readPluginFile(dir, PLUGIN_FILES.rootCert),
    readPluginFile(dir, PLUGIN_FILES.certChain),
  ]);
  return parsePluginMaterial({ caCertPem, caKeyPem, rootCertPem, certChainPem }, nowMs);
}

/** Checks the four texts (e.g. the keys of a Secret); errors name the file/key and the problem. */
export async function parsePluginMaterial(pem: PluginPem, nowMs: number): Promise<SigningMaterial> {
  const { caCertPem: caCertText, caKeyPem: caKeyText, rootCertPem: rootText, certChainPem: chainText } = pem;
  const caCert = parseCerts(caCertText, PLUGIN_FILES.caCert, { allowEmpty: false })[0] as X509Certificate;
  checkIsValidCa(caCert, PLUGIN_FILES.caCert, nowMs);
  const roots = parseCerts(rootText, PLUGIN_FILES.rootCert, { allowEmpty: false });
  for (const root of roots) {
    if (!root.ca || root.issuer !== root.subject || !root.verify(root.publicKey)) {
      throw invalid(PLUGIN_FILES.rootCert, `${describe(root)} is not a self-signed CA certificate`);
    }
  }
  const chainCerts = parseCerts(chainText, PLUGIN_FILES.certChain, { allowEmpty: true });
  const chain = linkChain(caCert, chainCerts, roots);

  const key = parsePrivateKey(caKeyText);
  const certSpki = caCert.publicKey.export({ type: 'spki', format: 'der' });
  const keySpki = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!certSpki.equals(keySpki)) {
    throw new IdentityError(
      'FERRY_CA_PLUGIN_KEY_MISMATCH',
      `${PLUGIN_FILES.caKey} is not the private key of ${PLUGIN_FILES.caCert} (${describe(caCert)})`,
    );
  }
  const { signingKey, signingAlgorithm } = await importSigningKey(key);
  return {
    signingCert: new x509.X509Certificate(caCert.raw),
    signingKey,
    signingAlgorithm,
    chainPem: chain.map((c) => c.toString()),
    rootsPem: roots.map((c) => c.toString()),
  };
}

async function readPluginFile(dir: string, name: string): Promise<string> {
  const path = join(dir, name);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new IdentityError('FERRY_CA_PLUGIN_FILE_MISSING', `${path}: cannot read (${code})`, { cause: err });
  }
}

function parseCerts(text: string, file: string, opts: { allowEmpty: boolean }): X509Certificate[] {
  const blocks = text.match(CERT_BLOCK_RE) ?? [];
  if (blocks.length === 0 && !opts.allowEmpty) throw invalid(file, 'no PEM "CERTIFICATE" block found');
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw invalid(file, `certificate #${i + 1} does not parse (${messageOf(err)})`, err);
    }
  });
}

function checkIsValidCa(cert: X509Certificate, file: string, nowMs: number): void {
  if (!cert.ca) throw invalid(file, `${describe(cert)} is not a CA certificate (basicConstraints cA is false)`);
  const usage = new x509.X509Certificate(cert.raw).getExtension(x509.KeyUsagesExtension);
  if (usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw invalid(file, `${describe(cert)} lacks the keyCertSign key usage`);
  }
  if (Date.parse(cert.validTo) <= nowMs) throw invalid(file, `${describe(cert)} expired at ${cert.validTo}`);
  if (Date.parse(cert.validFrom) > nowMs)
    throw invalid(file, `${describe(cert)} is not valid before ${cert.validFrom}`);
}

/**
 * Istio writes cert-chain.pem as "ca-cert, intermediates..., root"; some setups omit ca-cert or the root.
 * Normalize to [ca-cert, ..., root] and check each certificate is signed by the next one.
 */
function linkChain(
  caCert: X509Certificate,
  chainCerts: readonly X509Certificate[],
  roots: readonly X509Certificate[],
): X509Certificate[] {
  const chain = [...chainCerts];
  if (chain[0] === undefined || !sameCert(chain[0], caCert)) chain.unshift(caCert);
  for (let i = 0; i + 1 < chain.length; i++) {
    const child = chain[i] as X509Certificate;
    const parent = chain[i + 1] as X509Certificate;
    if (!child.checkIssued(parent) || !child.verify(parent.publicKey)) {
      throw new IdentityError(
        'FERRY_CA_PLUGIN_CHAIN_INVALID',
        `${PLUGIN_FILES.certChain}: ${describe(child)} is not signed by the next certificate, ${describe(parent)}`,
      );
    }
  }
  const last = chain[chain.length - 1] as X509Certificate;
  if (roots.some((r) => sameCert(r, last))) return chain;
  const issuer = roots.find((r) => last.checkIssued(r) && last.verify(r.publicKey));
  if (issuer === undefined) {
    throw new IdentityError(
      'FERRY_CA_PLUGIN_CHAIN_INVALID',
      `${PLUGIN_FILES.certChain}: chain ends at ${describe(last)}, which no root in ${PLUGIN_FILES.rootCert} signed`,
    );
  }
  return [...chain, issuer];
}

function parsePrivateKey(text: string): KeyObject {
  let key: KeyObject;
  try {
    // Accepts PKCS#8 "PRIVATE KEY", SEC1 "EC PRIVATE KEY" and PKCS#1 "RSA PRIVATE KEY".
    key = createPrivateKey(text);
  } catch (err) {
    throw invalid(PLUGIN_FILES.caKey, `not a readable unencrypted PEM private key (${messageOf(err)})`, err);
  }
  return key;
}

async function importSigningKey(
  key: KeyObject,
): Promise<{ signingKey: CryptoKey; signingAlgorithm: SigningAlgorithm }> {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    const params =
      curve === 'prime256v1'
        ? { namedCurve: 'P-256', hash: 'SHA-256' }
        : curve === 'secp384r1'
          ? { namedCurve: 'P-384', hash: 'SHA-384' }
          : null;
    if (params === null) throw invalid(PLUGIN_FILES.caKey, `EC curve ${curve ?? 'unknown'} unsupported (P-256, P-384)`);
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      pkcs8,
      { name: 'ECDSA', namedCurve: params.namedCurve },
      false,
      ['sign'],
    );
    return { signingKey, signingAlgorithm: { name: 'ECDSA', hash: params.hash } };
  }
  if (key.asymmetricKeyType === 'rsa') {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const signingKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, alg, false, ['sign']);
    return { signingKey, signingAlgorithm: alg };
  }
  throw invalid(PLUGIN_FILES.caKey, `key type ${String(key.asymmetricKeyType)} unsupported (EC or RSA)`);
}

function sameCert(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

function describe(cert: X509Certificate): string {
  // node:crypto reports an empty subject as undefined (the type says string): SVIDs have one.
  const subject = ((cert.subject as string | undefined) ?? '').replaceAll('\n', ', ');
  const name = subject === '' ? (cert.subjectAltName ?? 'empty subject') : subject;
  return `certificate "${name}" (serial ${cert.serialNumber})`;
}

function invalid(file: string, problem: string, cause?: unknown): IdentityError {
  return new IdentityError('FERRY_CA_PLUGIN_FILE_INVALID', `${file}: ${problem}`, cause === undefined ? {} : { cause });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
