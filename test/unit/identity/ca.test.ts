// The CA's issued certificates as a peer sees them (node:crypto and openssl), for a generated root and for
// Istio's plug-in cacerts layout, plus the errors an operator gets for broken plug-in files.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, webcrypto, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CertificateAuthority } from '../../../src/identity/ca.ts';
import { DEFAULT_SVID_TTL_MS, MAX_SVID_TTL_MS } from '../../../src/identity/ca-policy.ts';
import { createCsr } from '../../../src/identity/csr.ts';
import { IdentityError } from '../../../src/identity/errors.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import {
  createIntermediateCa,
  createSelfSignedRoot,
  generateP256KeyPair,
  type KeyPair,
  privateKeyToPem,
  x509,
} from '../../../src/identity/x509.ts';

const TD = 'cluster.local';
const HOUR_MS = 3600_000;
const OPENSSL = ['/usr/bin/openssl', '/usr/local/bin/openssl'].find((p) => existsSync(p));

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `openssl verify` of a leaf against the root(s), intermediates untrusted. Returns openssl's output. */
async function opensslVerify(
  dir: string,
  chainPem: readonly string[],
  rootsPem: readonly string[],
  atMs = Date.now(),
): Promise<string> {
  assert.ok(OPENSSL);
  const [leaf, ...rest] = chainPem;
  const intermediates = rest.filter((p) => !rootsPem.includes(p));
  await writeFile(join(dir, 'v-leaf.pem'), leaf ?? '');
  await writeFile(join(dir, 'v-roots.pem'), rootsPem.join('\n'));
  const args = ['verify', '-CAfile', join(dir, 'v-roots.pem')];
  if (intermediates.length > 0) {
    await writeFile(join(dir, 'v-inter.pem'), intermediates.join('\n'));
    args.push('-untrusted', join(dir, 'v-inter.pem'));
  }
  args.push('-attime', String(Math.floor(atMs / 1000)), '-purpose', 'sslclient', join(dir, 'v-leaf.pem'));
  const { stdout } = await promisify(execFile)(OPENSSL, args);
  return stdout;
}

function assertChainVerifies(chainPem: readonly string[]): void {
  const certs = chainPem.map((p) => new X509Certificate(p));
  for (let i = 0; i + 1 < certs.length; i++) {
    const child = certs[i] as X509Certificate;
    const parent = certs[i + 1] as X509Certificate;
    assert.ok(child.checkIssued(parent), `cert #${i} not issued by #${i + 1}`);
    assert.ok(child.verify(parent.publicKey), `cert #${i} signature does not verify with #${i + 1}`);
  }
  const root = certs[certs.length - 1] as X509Certificate;
  assert.ok(root.verify(root.publicKey), 'chain does not end with a self-signed root');
}

test('generated CA issues SVIDs: one URI SAN, no CN, P-256, 24h by default, chain leaf then root', async (t) => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const ca = await CertificateAuthority.generate({ trustDomain: TD, now: () => now });
  const [rootPem] = ca.trustBundlePem();
  assert.ok(rootPem);
  const root = new X509Certificate(rootPem);
  assert.match(root.subject, new RegExp(`O=${TD}`));

  const id = spiffeId(TD, 'default', 'web');
  const res = await ca.sign({ csrPem: (await createCsr(id)).csrPem });
  assert.ok(res.ok);
  assert.equal(res.value.certChainPem.length, 2);
  assert.equal(res.value.certChainPem[1], rootPem, 'chain ends with the root');
  const leaf = new X509Certificate(res.value.certChainPem[0] ?? '');
  assert.equal(leaf.subject as string | undefined, undefined, 'no subject, hence no CN');
  assert.equal(leaf.subjectAltName, `URI:spiffe://${TD}/ns/default/sa/web`);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.publicKey.asymmetricKeyType, 'ec');
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(Date.parse(leaf.validTo), now + DEFAULT_SVID_TTL_MS);
  assert.ok(Date.parse(leaf.validFrom) <= now);
  assertChainVerifies(res.value.certChainPem);
  if (OPENSSL !== undefined) {
    assert.match(await opensslVerify(await tempDir(t), res.value.certChainPem, ca.trustBundlePem(), now), /OK/);
  }
});

test('requested validity is honoured, and clamped to the maximum', async () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const ca = await CertificateAuthority.generate({ trustDomain: TD, now: () => now });
  const { csrPem } = await createCsr(spiffeId(TD, 'default', 'web'));
  const oneHour = await ca.sign({ csrPem, ttlSeconds: 3600 });
  assert.ok(oneHour.ok);
  assert.equal(oneHour.value.notAfter.getTime(), now + HOUR_MS);
  const forever = await ca.sign({ csrPem, ttlSeconds: 10 * 365 * 24 * 3600 });
  assert.ok(forever.ok);
  assert.equal(forever.value.notAfter.getTime(), now + MAX_SVID_TTL_MS);
});

interface PluginPki {
  readonly rootPem: string;
  readonly interPem: string;
  readonly interKeyPkcs8: string;
}

async function makePluginPki(): Promise<PluginPki> {
  const now = Date.now();
  const rootKeys = await generateP256KeyPair();
  const root = await createSelfSignedRoot({
    keys: rootKeys,
    commonName: 'Istio root',
    organization: TD,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 1000 * HOUR_MS),
  });
  const interKeys = await generateP256KeyPair();
  const inter = await createIntermediateCa({
    keys: interKeys,
    commonName: 'Istio intermediate',
    organization: TD,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 500 * HOUR_MS),
    issuerCertificate: root,
    issuerKey: rootKeys.privateKey,
  });
  return {
    rootPem: root.toString('pem'),
    interPem: inter.toString('pem'),
    interKeyPkcs8: await privateKeyToPem(interKeys.privateKey),
  };
}

async function writePlugin(dir: string, pki: PluginPki, keyPem = pki.interKeyPkcs8): Promise<void> {
  await writeFile(join(dir, 'ca-cert.pem'), pki.interPem);
  await writeFile(join(dir, 'ca-key.pem'), keyPem);
  await writeFile(join(dir, 'root-cert.pem'), pki.rootPem);
  await writeFile(join(dir, 'cert-chain.pem'), `${pki.interPem}\n${pki.rootPem}`);
}

test('plug-in cacerts layout (SEC1 key): issued chain is leaf, intermediate, root and verifies', async (t) => {
  const dir = await tempDir(t);
  const pki = await makePluginPki();
  const sec1 = createPrivateKey(pki.interKeyPkcs8).export({ type: 'sec1', format: 'pem' }).toString();
  assert.match(sec1, /BEGIN EC PRIVATE KEY/);
  await writePlugin(dir, pki, sec1);
  const ca = await CertificateAuthority.loadPluggedIn(dir, { trustDomain: TD });
  assert.deepEqual(
    ca.trustBundlePem().map((p) => new X509Certificate(p).fingerprint256),
    [new X509Certificate(pki.rootPem).fingerprint256],
  );
  const res = await ca.sign({ csrPem: (await createCsr(spiffeId(TD, 'prod', 'api'))).csrPem });
  assert.ok(res.ok);
  const chain = res.value.certChainPem.map((p) => new X509Certificate(p));
  assert.equal(chain.length, 3);
  assert.equal(chain[1]?.fingerprint256, new X509Certificate(pki.interPem).fingerprint256);
  assert.equal(chain[2]?.fingerprint256, new X509Certificate(pki.rootPem).fingerprint256);
  assertChainVerifies(res.value.certChainPem);
  if (OPENSSL !== undefined) assert.match(await opensslVerify(dir, res.value.certChainPem, ca.trustBundlePem()), /OK/);
});

test('plug-in layout with a cert-chain.pem that omits ca-cert is completed', async (t) => {
  const dir = await tempDir(t);
  const pki = await makePluginPki();
  await writePlugin(dir, pki);
  await writeFile(join(dir, 'cert-chain.pem'), pki.rootPem);
  const ca = await CertificateAuthority.loadPluggedIn(dir, { trustDomain: TD });
  const res = await ca.sign({ csrPem: (await createCsr(spiffeId(TD, 'prod', 'api'))).csrPem });
  assert.ok(res.ok);
  assert.equal(res.value.certChainPem.length, 3);
  assertChainVerifies(res.value.certChainPem);
});

async function loadError(dir: string): Promise<IdentityError> {
  const err = await CertificateAuthority.loadPluggedIn(dir, { trustDomain: TD }).then(
    () => assert.fail('loading succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IdentityError, String(err));
  return err;
}

test('plug-in layout errors name the file and the problem', async (t) => {
  const pki = await makePluginPki();
  const other = await makePluginPki();

  await t.test('missing ca-key.pem', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki);
    await unlink(join(dir, 'ca-key.pem'));
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_FILE_MISSING');
    assert.match(err.message, /ca-key\.pem: cannot read \(ENOENT\)/);
  });
  await t.test('garbled ca-cert.pem', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki);
    await writeFile(
      join(dir, 'ca-cert.pem'),
      '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n',
    );
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_FILE_INVALID');
    assert.match(err.message, /^ca-cert\.pem: certificate #1 does not parse/);
  });
  await t.test('root-cert.pem without a certificate', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki);
    await writeFile(join(dir, 'root-cert.pem'), 'hello\n');
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_FILE_INVALID');
    assert.match(err.message, /^root-cert\.pem: no PEM "CERTIFICATE" block/);
  });
  await t.test('garbled ca-key.pem', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_FILE_INVALID');
    assert.match(err.message, /^ca-key\.pem: not a readable/);
  });
  await t.test('ca-key.pem of another certificate', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki, other.interKeyPkcs8);
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_KEY_MISMATCH');
    assert.match(err.message, /ca-key\.pem is not the private key of ca-cert\.pem/);
  });
  await t.test('ca-cert.pem that is not a CA', async (t) => {
    const dir = await tempDir(t);
    const ca = await CertificateAuthority.generate({ trustDomain: TD });
    const leaf = await ca.sign({ csrPem: (await createCsr(spiffeId(TD, 'a', 'b'))).csrPem });
    assert.ok(leaf.ok);
    await writePlugin(dir, pki);
    await writeFile(join(dir, 'ca-cert.pem'), leaf.value.certChainPem[0] ?? '');
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_FILE_INVALID');
    assert.match(err.message, /^ca-cert\.pem: .* is not a CA certificate/);
  });
  await t.test('cert-chain.pem leading to another root', async (t) => {
    const dir = await tempDir(t);
    await writePlugin(dir, pki);
    await writeFile(join(dir, 'root-cert.pem'), other.rootPem);
    await writeFile(join(dir, 'cert-chain.pem'), `${pki.interPem}\n${other.rootPem}`);
    const err = await loadError(dir);
    assert.equal(err.code, 'FERRY_CA_PLUGIN_CHAIN_INVALID');
    assert.match(err.message, /^cert-chain\.pem: .*Istio intermediate.* is not signed by the next certificate/);
  });
});

test('plug-in layout with an RSA intermediate (PKCS#1 key), as Istio sample CAs use', async (t) => {
  const dir = await tempDir(t);
  const rsa = {
    name: 'RSASSA-PKCS1-v1_5',
    hash: 'SHA-256',
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
  };
  const genRsa = async () => (await webcrypto.subtle.generateKey(rsa, true, ['sign', 'verify'])) as KeyPair;
  const now = Date.now();
  const rootKeys = await genRsa();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=cluster.local, CN=RSA root',
    keys: rootKeys,
    signingAlgorithm: rsa,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 1000 * HOUR_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const interKeys = await genRsa();
  const inter = await x509.X509CertificateGenerator.create({
    subject: 'O=cluster.local, CN=RSA intermediate',
    issuer: root.subject,
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: rsa,
    notBefore: new Date(now - HOUR_MS),
    notAfter: new Date(now + 500 * HOUR_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
    ],
  });
  const pkcs1 = createPrivateKey(await privateKeyToPem(interKeys.privateKey))
    .export({ type: 'pkcs1', format: 'pem' })
    .toString();
  assert.match(pkcs1, /BEGIN RSA PRIVATE KEY/);
  await writePlugin(dir, { rootPem: root.toString('pem'), interPem: inter.toString('pem'), interKeyPkcs8: pkcs1 });
  const ca = await CertificateAuthority.loadPluggedIn(dir, { trustDomain: TD });
  const res = await ca.sign({ csrPem: (await createCsr(spiffeId(TD, 'prod', 'api'))).csrPem });
  assert.ok(res.ok);
  assert.equal(res.value.certChainPem.length, 3);
  assertChainVerifies(res.value.certChainPem);
  if (OPENSSL !== undefined) assert.match(await opensslVerify(dir, res.value.certChainPem, ca.trustBundlePem()), /OK/);
});
