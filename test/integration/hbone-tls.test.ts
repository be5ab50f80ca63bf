// HBONE's TLS contract (docs/architecture.md "HBONE (wire contract)", docs/architecture.md "HBONE (wire contract)", "Identity") against real handshakes:
// mutual TLS 1.3 with ALPN h2, client certs from our trust domain only, servers must present an expected
// identity, and hostile bytes on the port end only that connection.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { ProxyError } from '../../src/errors.ts';
import { HboneClientPool } from '../../src/hbone/pool.ts';
import { formatSpiffeId, type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';
import type { WorkloadCertificate } from '../../src/identity/workload-certificate.ts';
import { startEchoServer } from '../helpers/echo-server.ts';
import { type HboneFixture, startHboneFixture } from '../helpers/hbone-client.ts';
import { createTestPki } from '../helpers/test-pki.ts';

const HOUR_MS = 3_600_000;
const pki = await createTestPki('cluster.local');
const foreign = await createTestPki('other.example');
const clientCert = await pki.issue('default', 'sleep');

async function setup(t: TestContext, serverCert?: WorkloadCertificate) {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const cert = serverCert ?? (await pki.issue('default', 'echo'));
  const fixture = stack.use(await startHboneFixture(cert));
  const echo = stack.use(await startEchoServer());
  const pool = new HboneClientPool();
  stack.defer(() => pool.destroy());
  const tunnelFrom = (source: WorkloadCertificate, expected: readonly SpiffeId[] = [cert.identity]) =>
    pool.connect({
      source,
      dst: fixture.server.address,
      expectedIdentities: expected,
      authority: `127.0.0.1:${echo.port}`,
    });
  /** The server still serves a good client: the check after every hostile case. */
  const assertStillServing = async (): Promise<void> => {
    const tun = await tunnelFrom(clientCert);
    tun.end('ping');
    const [chunk] = (await once(tun, 'data')) as [Buffer];
    assert.equal(chunk.toString(), 'ping');
  };
  return { fixture, cert, tunnelFrom, assertStillServing };
}

function isCode(code: string): (e: unknown) => boolean {
  return (e) => e instanceof ProxyError && e.code === code;
}

/** Connects with arbitrary TLS options; resolves with how it ended (never rejects). */
function tlsAttempt(fixture: HboneFixture, opts: ConnectionOptions): Promise<'settings' | 'refused'> {
  const { ip, port } = fixture.server.address;
  const socket = tlsConnect({ host: ip, port, ...opts });
  const session = h2connect(`https://${ip}:${port}`, { createConnection: () => socket });
  session.on('error', () => {});
  return new Promise((resolve) => {
    socket.on('error', () => resolve('refused')); // see HboneConnection.dial: the session misses late alerts
    session.once('remoteSettings', () => {
      resolve('settings');
      session.destroy();
    });
    session.once('close', () => resolve('refused'));
  });
}

test('a client certificate from an unknown root is refused in the handshake', async (t) => {
  const { tunnelFrom, assertStillServing } = await setup(t);
  const stranger = await foreign.issue('default', 'sleep', { extraRootsPem: [pki.rootPem] });
  await assert.rejects(tunnelFrom(stranger), isCode('FERRY_HBONE_HANDSHAKE_FAILED'));
  await assertStillServing();
});

test('a chained client certificate of another trust domain is refused with TRUST_DOMAIN_MISMATCH', async (t) => {
  // The server trusts both roots, so the chain verifies; only the SAN's trust domain is wrong.
  const serverCert = await pki.issue('default', 'echo', { extraRootsPem: [foreign.rootPem] });
  const { fixture, tunnelFrom, assertStillServing } = await setup(t, serverCert);
  const stranger = await foreign.issue('default', 'sleep', { extraRootsPem: [pki.rootPem] });
  await assert.rejects(tunnelFrom(stranger), isCode('FERRY_HBONE_HANDSHAKE_FAILED'));
  assert.ok(fixture.peerErrors.some((e) => e.error.code === 'FERRY_HBONE_TRUST_DOMAIN_MISMATCH'));
  assert.equal(fixture.requests.length, 0);
  await assertStillServing();
});

test('an expired client certificate is refused', async (t) => {
  const { tunnelFrom, assertStillServing } = await setup(t);
  const expired = await pki.issue('default', 'sleep', {
    notBefore: new Date(Date.now() - 48 * HOUR_MS),
    notAfter: new Date(Date.now() - 24 * HOUR_MS),
  });
  await assert.rejects(tunnelFrom(expired), isCode('FERRY_HBONE_HANDSHAKE_FAILED'));
  await assertStillServing();
});

test('a client without a certificate is refused', async (t) => {
  const { fixture, assertStillServing } = await setup(t);
  assert.equal(
    await tlsAttempt(fixture, { ca: [pki.rootPem], ALPNProtocols: ['h2'], checkServerIdentity: () => undefined }),
    'refused',
  );
  await assertStillServing();
});

test('a server whose URI SAN is not expected is rejected by the client', async (t) => {
  const { tunnelFrom, fixture } = await setup(t);
  const notEcho = spiffeId('cluster.local', 'default', 'not-echo');
  const err = await tunnelFrom(clientCert, [notEcho]).then(
    () => assert.fail('expected rejection'),
    (e: unknown) => e,
  );
  assert.ok(isCode('FERRY_HBONE_PEER_IDENTITY_MISMATCH')(err), String(err));
  assert.match((err as Error).message, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/echo/);
  assert.equal(fixture.requests.length, 0);
});

test('TLS 1.2-only and http/1.1-only clients are refused', async (t) => {
  const { fixture, assertStillServing } = await setup(t);
  const base = {
    key: clientCert.privateKeyPem,
    cert: clientCert.certChainPem.join('\n'),
    ca: [pki.rootPem],
    checkServerIdentity: () => undefined,
  };
  assert.equal(await tlsAttempt(fixture, { ...base, ALPNProtocols: ['h2'], maxVersion: 'TLSv1.2' }), 'refused');
  assert.equal(await tlsAttempt(fixture, { ...base, ALPNProtocols: ['http/1.1'] }), 'refused');
  assert.equal(await tlsAttempt(fixture, { ...base }), 'refused'); // no ALPN at all
  assert.equal(await tlsAttempt(fixture, { ...base, ALPNProtocols: ['h2'] }), 'settings'); // control
  await assertStillServing();
});

test('garbage and truncated TLS or HTTP/2 input ends only that connection', async (t) => {
  const { fixture, assertStillServing } = await setup(t);
  const { ip, port } = fixture.server.address;
  const rawSend = async (bytes: Buffer, end: boolean): Promise<void> => {
    const s = netConnect({ host: ip, port });
    s.on('error', () => {});
    await once(s, 'connect');
    s.write(bytes);
    if (end) s.end();
    else setImmediate(() => s.destroy());
    await once(s, 'close');
  };
  await rawSend(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), true);
  await rawSend(crypto.getRandomValues(Buffer.alloc(4096)), true);
  await rawSend(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]), true); // truncated ClientHello
  await rawSend(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), false); // huge record length, then RST
  // Past a good handshake: garbage HTTP/2 frames and a truncated frame header.
  const tlsOpts = {
    key: clientCert.privateKeyPem,
    cert: clientCert.certChainPem.join('\n'),
    ca: [pki.rootPem],
    ALPNProtocols: ['h2'],
    checkServerIdentity: () => undefined,
  };
  for (const payload of [
    Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), crypto.getRandomValues(Buffer.alloc(2048))]),
    Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0x00, 0x00, 0x06, 0x04])]),
    crypto.getRandomValues(Buffer.alloc(100)),
  ]) {
    const s = tlsConnect({ host: ip, port, ...tlsOpts });
    s.on('error', () => {});
    await once(s, 'secureConnect');
    s.resume(); // read the server's SETTINGS/GOAWAY so its close reaches us
    s.end(payload);
    await once(s, 'close');
  }
  await assertStillServing();
});

test('certificate rotation: new handshakes present the new certificate', async (t) => {
  const { fixture, tunnelFrom } = await setup(t);
  const rotated = await pki.issue('default', 'echo-v2');
  fixture.server.setCertificate(rotated);
  await assert.rejects(
    tunnelFrom(clientCert, [(await pki.issue('default', 'echo')).identity]),
    isCode('FERRY_HBONE_PEER_IDENTITY_MISMATCH'),
  );
  const tun = await tunnelFrom(clientCert, [rotated.identity]);
  tun.end();
});

const OPENSSL = '/usr/bin/openssl';
test('openssl s_client sees TLSv1.3, ALPN h2, a required client certificate and the SPIFFE URI SAN', {
  skip: !existsSync(OPENSSL) && 'no openssl',
}, async (t) => {
  const { fixture, cert } = await setup(t);
  const dir = await mkdtemp(join(tmpdir(), 'ferrytest-openssl-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'cert.pem'), clientCert.certChainPem.join('\n'));
  await writeFile(join(dir, 'key.pem'), clientCert.privateKeyPem);
  await writeFile(join(dir, 'root.pem'), pki.rootPem);
  const sClient = (extra: string[]) =>
    new Promise<string>((resolve) => {
      const child = execFile(
        OPENSSL,
        [
          's_client',
          '-connect',
          `${fixture.server.address.ip}:${fixture.server.address.port}`,
          '-alpn',
          'h2',
          '-CAfile',
          join(dir, 'root.pem'),
          '-showcerts',
          ...extra,
        ],
        { timeout: 30_000 },
        (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
      );
      // Send the HTTP/2 preface so the server answers (and, without a cert, reports the missing one).
      child.stdin?.end('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    });
  const withCert = await sClient(['-cert', join(dir, 'cert.pem'), '-key', join(dir, 'key.pem')]);
  assert.match(withCert, /TLSv1\.3/);
  assert.match(withCert, /ALPN protocol: h2/);
  assert.match(withCert, /Verify return code: 0 \(ok\)/);
  assert.match(
    withCert,
    /Acceptable client certificate CA names|Requested Signature Algorithms|Client Certificate Types/,
  );
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(withCert)?.[0];
  assert.ok(pem, 'no certificate in s_client output');
  assert.equal(new X509Certificate(pem).subjectAltName, `URI:${formatSpiffeId(cert.identity)}`);
  const withoutCert = await sClient(['-ign_eof']); // read until the server's alert closes the connection
  assert.match(withoutCert, /certificate required|alert number 116/i);
});
