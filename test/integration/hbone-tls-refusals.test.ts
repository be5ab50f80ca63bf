// Why an HBONE handshake was refused, in the log with the peer's ip:port (issue 9, item 6: every refusal
// used to read `socket hang up` with `peer: {}`). Real TLS 1.3 handshakes against an HboneServer whose
// onPeerError goes through the same logHbonePeerError the ztunnel and the waypoint use; and the client
// side: the error a dial fails with names why the server's certificate was refused.
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { HboneConnection } from '../../src/hbone/client.ts';
import { logHbonePeerError } from '../../src/hbone/server.ts';
import { spiffeId } from '../../src/identity/spiffe-id.ts';
import { buildTlsContexts } from '../../src/identity/tls-context.ts';
import { type TlsRefusalReason, TlsRefusedError } from '../../src/identity/tls-refusal.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import { generateP256KeyPair, privateKeyToPem, x509 } from '../../src/identity/x509.ts';
import { startHboneFixture } from '../helpers/hbone-client.ts';
import { createTestPki, type TestPki } from '../helpers/test-pki.ts';
import { CapturingLogger, type LogLine } from '../helpers/xds-events.ts';

const HOUR_MS = 3_600_000;
const pki = await createTestPki('cluster.local');
const otherCa = await createTestPki('cluster.local'); // same trust domain, another root
const otherDomain = await createTestPki('other.example');
const good = await pki.issue('default', 'sleep');
const expiredWindow = { notBefore: new Date(Date.now() - 48 * HOUR_MS), notAfter: new Date(Date.now() - 24 * HOUR_MS) };
const futureWindow = { notBefore: new Date(Date.now() + 24 * HOUR_MS), notAfter: new Date(Date.now() + 48 * HOUR_MS) };

/** A certificate from `ca` for both TLS roles whose only SAN is a DNS name: chains fine, no SPIFFE ID. */
async function issueWithoutUriSan(ca: TestPki): Promise<WorkloadCertificate> {
  const keys = await generateP256KeyPair();
  const notBefore = new Date(Date.now() - HOUR_MS);
  const notAfter = new Date(Date.now() + 24 * HOUR_MS);
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: '0a1b2c3d',
    subject: 'CN=no-uri-san',
    issuer: ca.rootCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    publicKey: keys.publicKey,
    signingKey: ca.rootKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'no-uri-san.example' }]),
      await x509.AuthorityKeyIdentifierExtension.create(ca.rootCert.publicKey),
    ],
  });
  return {
    identity: spiffeId(ca.trustDomain, 'default', 'unused'), // what the test meant; not in the certificate
    privateKeyPem: await privateKeyToPem(keys.privateKey),
    certChainPem: [leaf.toString('pem')],
    rootsPem: [ca.rootPem],
    notBefore,
    notAfter,
  };
}

async function server(t: TestContext, cert?: WorkloadCertificate) {
  const log = new CapturingLogger();
  const fixture = await startHboneFixture(cert ?? (await pki.issue('default', 'echo')), {
    extra: { onPeerError: (e) => logHbonePeerError(log, e, 'debug', { address: 'test' }) },
  });
  t.after(() => fixture[Symbol.asyncDispose]());
  return { fixture, log };
}

/** A raw TLS client with `opts`; resolves with its local port once the server has closed on it. */
async function handshake(address: { ip: string; port: number }, opts: ConnectionOptions): Promise<number> {
  const socket = tlsConnect({
    host: address.ip,
    port: address.port,
    ca: [pki.rootPem],
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
    ...opts,
  });
  let localPort = 0;
  socket.once('connect', () => {
    localPort = socket.localPort ?? 0;
  });
  socket.on('error', () => {}); // the refusal: what the server logged is what we check
  socket.resume();
  await new Promise((resolve) => socket.once('close', resolve)); // not events.once(): it rejects on 'error'
  return localPort;
}

function withCert(cert: WorkloadCertificate): ConnectionOptions {
  return { key: cert.privateKeyPem, cert: cert.certChainPem.join('\n') };
}

interface ServerCase {
  readonly name: string;
  readonly client: () => Promise<ConnectionOptions>;
  readonly serverCert?: () => Promise<WorkloadCertificate>;
  readonly code: string;
  readonly reason: TlsRefusalReason;
  /** OpenSSL's code, when the refusal came from chain verification. */
  readonly tlsError?: RegExp;
  readonly message: RegExp;
}

const SERVER_CASES: readonly ServerCase[] = [
  {
    name: 'an expired client certificate',
    client: async () => withCert(await pki.issue('default', 'sleep', expiredWindow)),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'expired',
    tlsError: /^CERT_HAS_EXPIRED$/,
    message: /client certificate has expired/,
  },
  {
    name: 'a client certificate that is not yet valid',
    client: async () => withCert(await pki.issue('default', 'sleep', futureWindow)),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'not-yet-valid',
    tlsError: /^CERT_NOT_YET_VALID$/,
    message: /client certificate is not yet valid/,
  },
  {
    name: 'a client certificate from another CA',
    client: async () => withCert(await otherCa.issue('default', 'sleep')),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'unknown-ca',
    tlsError: /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/,
    message: /unknown CA/,
  },
  {
    name: 'a chained client certificate of another trust domain',
    // The server trusts both roots, so the chain verifies; only the SPIFFE ID's trust domain is wrong.
    serverCert: () => pki.issue('default', 'echo', { extraRootsPem: [otherDomain.rootPem] }),
    client: async () => withCert(await otherDomain.issue('default', 'sleep')),
    code: 'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
    reason: 'wrong-trust-domain',
    message: /spiffe:\/\/other\.example\/ns\/default\/sa\/sleep is not in trust domain cluster\.local/,
  },
  {
    name: 'a client certificate without a URI SAN',
    client: async () => withCert(await issueWithoutUriSan(pki)),
    code: 'FERRY_HBONE_TRUST_DOMAIN_MISMATCH',
    reason: 'no-spiffe-id',
    message: /expected exactly one URI SAN, found 0/,
  },
  {
    name: 'no client certificate',
    client: async () => ({}),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'no-certificate',
    tlsError: /^ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE$/,
    message: /no certificate was presented/,
  },
  {
    name: 'a TLS 1.2-only client',
    client: async () => ({ ...withCert(good), maxVersion: 'TLSv1.2' }),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'protocol',
    tlsError: /^ERR_SSL_/,
    message: /TLS protocol mismatch/,
  },
];

for (const c of SERVER_CASES) {
  test(`server log: ${c.name} → reason ${c.reason}, with the peer's ip:port`, async (t) => {
    const { fixture, log } = await server(t, await c.serverCert?.());
    const from = log.events.mark();
    const localPort = await handshake(fixture.server.address, await c.client());
    const peer = `127.0.0.1:${localPort}`;
    const line: LogLine = await log.events.waitFor((l) => l.fields.peer === peer, from);
    assert.equal(line.level, 'warn', 'refused handshakes are logged at warn, also where other peer errors are debug');
    assert.equal(line.msg, 'HBONE peer error');
    assert.equal(line.fields.code, c.code);
    assert.equal(line.fields.reason, c.reason);
    assert.equal(line.fields.address, 'test');
    if (c.tlsError === undefined) assert.equal(line.fields.tls_error, undefined);
    else assert.match(String(line.fields.tls_error), c.tlsError);
    assert.match(String(line.fields.error), c.message);
    assert.doesNotMatch(String(line.fields.error), /^TLS: socket hang up$/);
    assert.equal(fixture.requests.length, 0);
  });
}

interface ClientCase {
  readonly name: string;
  readonly serverCert: () => Promise<WorkloadCertificate>;
  readonly expected?: () => ReturnType<typeof spiffeId>;
  readonly code: string;
  readonly reason: TlsRefusalReason;
  readonly message: RegExp;
}

const echoId = () => spiffeId('cluster.local', 'default', 'echo');
const CLIENT_CASES: readonly ClientCase[] = [
  {
    name: 'an expired server certificate',
    serverCert: () => pki.issue('default', 'echo', expiredWindow),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'expired',
    message: /certificate has expired \(CERT_HAS_EXPIRED/,
  },
  {
    name: 'a server certificate that is not yet valid',
    serverCert: () => pki.issue('default', 'echo', futureWindow),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'not-yet-valid',
    message: /not yet valid \(CERT_NOT_YET_VALID/,
  },
  {
    name: 'a server certificate from another CA',
    serverCert: () => otherCa.issue('default', 'echo'),
    code: 'FERRY_HBONE_HANDSHAKE_FAILED',
    reason: 'unknown-ca',
    message: /unknown CA/,
  },
  {
    name: 'a server certificate without a URI SAN',
    serverCert: () => issueWithoutUriSan(pki),
    code: 'FERRY_HBONE_PEER_IDENTITY_MISMATCH',
    reason: 'no-spiffe-id',
    message: /server certificate: expected exactly one URI SAN, found 0/,
  },
  {
    name: 'a server of another identity',
    serverCert: () => pki.issue('default', 'not-echo'),
    code: 'FERRY_HBONE_PEER_IDENTITY_MISMATCH',
    reason: 'unexpected-identity',
    message: /not one of the expected/,
  },
];

for (const c of CLIENT_CASES) {
  test(`client error: ${c.name} → reason ${c.reason}`, async (t) => {
    const { fixture } = await server(t, await c.serverCert());
    const err = await HboneConnection.dial({
      tls: buildTlsContexts(good),
      expectedIdentities: [echoId()],
      dst: fixture.server.address,
    }).then(
      (conn) => {
        conn.destroy();
        return assert.fail('the dial should have failed');
      },
      (e: unknown) => e,
    );
    assert.ok(err instanceof TlsRefusedError, String(err));
    assert.equal(err.code, c.code);
    assert.equal(err.reason, c.reason);
    assert.match(err.message, c.message);
  });
}

test('client error when the server refuses our certificate: peer-closed, pointing at the server log', async (t) => {
  const { fixture, log } = await server(t);
  const expired = await pki.issue('default', 'sleep', expiredWindow);
  const err = await HboneConnection.dial({
    tls: buildTlsContexts(expired),
    expectedIdentities: [echoId()],
    dst: fixture.server.address,
  }).then(
    () => assert.fail('the dial should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof TlsRefusedError, String(err));
  assert.equal(err.reason, 'peer-closed');
  assert.match(err.message, /may have refused our certificate/);
  const line = await log.events.waitFor((l) => l.fields.reason === 'expired');
  assert.match(String(line.fields.peer), /^127\.0\.0\.1:\d+$/);
});
