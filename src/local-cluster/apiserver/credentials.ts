// The API server's own credentials, kept in its data directory (mode 0700, files 0600) so that a restart
// keeps every kubeconfig valid: a self-signed CA and a serving certificate for the loopback address it
// listens on, and a random bearer token. Nothing here is readable by other local users.
import { createPrivateKey, randomBytes, timingSafeEqual, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createSelfSignedRoot,
  createServingCertificate,
  EC_P256,
  generateP256KeyPair,
  privateKeyToPem,
  x509,
} from '../../identity/x509.ts';
import { writeFileDurable } from '../../runtime/durable-file.ts';

export interface ServerCredentials {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly token: string;
  /** Signs ServiceAccount tokens (TokenRequest), checked by TokenReview. */
  readonly saKeyPem: string;
}

const DAY_MS = 86_400_000;
const CA_TTL_MS = 3650 * DAY_MS;
const SERVING_TTL_MS = 365 * DAY_MS;
const RENEW_BEFORE_MS = 30 * DAY_MS;

/** Creates the directory private to this user (0700), tightening it if it already exists. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const s = await stat(dir);
  if ((s.mode & 0o077) !== 0) await chmod(dir, 0o700);
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Loads (or creates on first start) the CA, a serving certificate valid for `hosts`, and the token. */
export async function loadOrCreateCredentials(dataDir: string, hosts: readonly string[]): Promise<ServerCredentials> {
  const pki = join(dataDir, 'pki');
  await ensurePrivateDir(pki);
  const caPath = join(pki, 'ca.pem');
  const caKeyPath = join(pki, 'ca-key.pem');
  const certPath = join(pki, 'serving.pem');
  const keyPath = join(pki, 'serving-key.pem');
  const tokenPath = join(dataDir, 'token');

  let caPem = await readOptional(caPath);
  let caKeyPem = await readOptional(caKeyPath);
  if (caPem === null || caKeyPem === null) {
    const keys = await generateP256KeyPair();
    const now = Date.now();
    const ca = await createSelfSignedRoot({
      keys,
      commonName: 'ferry-local-apiserver-ca',
      organization: 'ferry',
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + CA_TTL_MS),
    });
    caKeyPem = await privateKeyToPem(keys.privateKey);
    caPem = ca.toString('pem');
    await writeFileDurable(caKeyPath, caKeyPem, 0o600);
    await writeFileDurable(caPath, caPem, 0o600);
  }

  let certPem = await readOptional(certPath);
  let keyPem = await readOptional(keyPath);
  if (certPem === null || keyPem === null || !servingCertFits(certPem, caPem, hosts)) {
    const keys = await generateP256KeyPair();
    const now = Date.now();
    const ipAddresses = hosts.filter((h) => /^[0-9.]+$/.test(h) || h.includes(':'));
    const dnsNames = ['localhost', ...hosts.filter((h) => !ipAddresses.includes(h) && h !== 'localhost')];
    const cert = await createServingCertificate({
      subjectPublicKey: keys.publicKey,
      issuerCertificate: new x509.X509Certificate(caPem),
      issuerKey: await importSigningKey(caKeyPem),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + SERVING_TTL_MS),
      dnsNames,
      ipAddresses: [...new Set(['127.0.0.1', ...ipAddresses])],
    });
    keyPem = await privateKeyToPem(keys.privateKey);
    certPem = cert.toString('pem');
    await writeFileDurable(keyPath, keyPem, 0o600);
    await writeFileDurable(certPath, certPem, 0o600);
  }

  let token = (await readOptional(tokenPath))?.trim() ?? '';
  if (token === '') {
    token = randomBytes(32).toString('base64url');
    await writeFileDurable(tokenPath, `${token}\n`, 0o600);
  }
  const saKeyPath = join(pki, 'sa-key.pem');
  let saKeyPem = await readOptional(saKeyPath);
  if (saKeyPem === null) {
    saKeyPem = await privateKeyToPem((await generateP256KeyPair()).privateKey);
    await writeFileDurable(saKeyPath, saKeyPem, 0o600);
  }
  return { caPem, certPem, keyPem, token, saKeyPem };
}

async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, EC_P256, false, ['sign']);
}

// Reissue when the certificate is near expiry, from another CA, or not valid for a host we listen on.
function servingCertFits(certPem: string, caPem: string, hosts: readonly string[]): boolean {
  try {
    const cert = new X509Certificate(certPem);
    if (!cert.verify(new X509Certificate(caPem).publicKey)) return false;
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE_MS) return false;
    return hosts.every((h) => (cert.checkIP(h) ?? cert.checkHost(h)) !== undefined);
  } catch {
    return false;
  }
}

/** Constant-time check of an `Authorization: Bearer …` header against the token. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (header === undefined || !header.startsWith('Bearer ')) return false;
  const given = Buffer.from(header.slice(7).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
