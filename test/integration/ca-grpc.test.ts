// The CA over real gRPC + TLS on loopback: issuance end to end, node-bound refusals as a node's ztunnel sees
// them, client-side checks of a misbehaving CA, and hostile bytes on the CA port that must not stop it.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { CertificateAuthority } from '../../src/identity/ca.ts';
import { allowAll, nodeBoundAuthorizer } from '../../src/identity/ca-authz.ts';
import { CaClient } from '../../src/identity/ca-client.ts';
import { encodeCertificateRequest, loadCaServiceDefinition } from '../../src/identity/ca-grpc.ts';
import { type CaServer, startCaServer } from '../../src/identity/ca-server.ts';
import { CertificateManager } from '../../src/identity/cert-manager.ts';
import { createCsr } from '../../src/identity/csr.ts';
import { IdentityError } from '../../src/identity/errors.ts';
import type { IdentityLog } from '../../src/identity/log.ts';
import { formatSpiffeId, type SpiffeId, spiffeId } from '../../src/identity/spiffe-id.ts';

const TD = 'cluster.local';
const WEB = spiffeId(TD, 'default', 'web');
const DB = spiffeId(TD, 'default', 'db');

interface TestCtx {
  after: (fn: () => unknown) => void;
}

interface LogLine {
  readonly level: 'info' | 'warn' | 'error';
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg: string;
}

function memoryLog(): IdentityLog & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (fields, msg) => lines.push({ level: 'info', fields, msg }),
    warn: (fields, msg) => lines.push({ level: 'warn', fields, msg }),
    error: (fields, msg) => lines.push({ level: 'error', fields, msg }),
  };
}

async function startCa(t: TestCtx, authorizer = allowAll(), log = memoryLog()) {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  const server = await startCaServer({ ca, authorizer, log });
  t.after(() => server.close());
  return { ca, server, log };
}

async function client(t: TestCtx, server: CaServer, ca: CertificateAuthority, token?: string): Promise<CaClient> {
  const c = await CaClient.create({
    address: server.address,
    roots: { pem: ca.trustBundlePem() },
    timeoutMs: 5000,
    ...(token === undefined ? {} : { token }),
  });
  t.after(() => c.close());
  return c;
}

async function fetchError(c: CaClient, id: SpiffeId): Promise<IdentityError> {
  const err = await c.fetch(id).then(
    () => assert.fail(`fetch of ${formatSpiffeId(id)} succeeded`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof IdentityError, String(err));
  return err;
}

test('a ztunnel obtains a usable SVID over gRPC + TLS', async (t) => {
  const { ca, server, log } = await startCa(t);
  const c = await client(t, server, ca);
  const cert = await c.fetch(WEB);
  assert.deepEqual(cert.identity, WEB);
  assert.equal(cert.certChainPem.length, 1, 'leaf only: the root is in the bundle, not the presented chain');
  assert.deepEqual(cert.rootsPem, ca.trustBundlePem());
  const leaf = new X509Certificate(cert.certChainPem[0] ?? '');
  assert.equal(leaf.subjectAltName, `URI:${formatSpiffeId(WEB)}`);
  assert.ok(leaf.verify(new X509Certificate(ca.trustBundlePem()[0] ?? '').publicKey));
  const hours = (cert.notAfter.getTime() - cert.notBefore.getTime()) / 3600_000;
  assert.ok(hours > 24 && hours < 24.1, `24h validity (plus clock-skew backdating), got ${hours}h`);
  tls.createSecureContext({ key: cert.privateKeyPem, cert: cert.certChainPem.join('\n') }); // key matches the leaf
  assert.ok(log.lines.some((l) => l.msg === 'certificate issued' && l.fields.identity === formatSpiffeId(WEB)));
});

test('root from a file, and the certificate manager over the real gRPC path', async (t) => {
  const { ca, server } = await startCa(t);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-ca-root-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootFile = join(dir, 'root-cert.pem');
  await writeFile(rootFile, ca.trustBundlePem().join('\n'));
  const c = await CaClient.create({ address: `localhost:${server.port}`, roots: { file: rootFile } });
  t.after(() => c.close());
  const manager = new CertificateManager({ source: c });
  t.after(() => manager.close());
  const [a, b] = await Promise.all([manager.getCertificate(DB), manager.getCertificate(DB)]);
  assert.equal(a, b);
  assert.deepEqual(a?.identity, DB);
  assert.equal(manager.snapshot()[0]?.state, 'available');
});

test('node-bound authorization: a node gets only identities of its own workloads', async (t) => {
  const authorizer = nodeBoundAuthorizer({
    tokens: new Map([['token-node-a', 'node-a']]),
    mayHold: (node, id) => node === 'node-a' && id.serviceAccount === 'web',
  });
  const { ca, server, log } = await startCa(t, authorizer);

  const nodeA = await client(t, server, ca, 'token-node-a');
  assert.deepEqual((await nodeA.fetch(WEB)).identity, WEB);

  const refused = await fetchError(nodeA, DB);
  assert.equal(refused.code, 'FERRY_CA_REQUEST_REFUSED');
  assert.match(refused.message, /PERMISSION_DENIED/);
  assert.match(refused.message, /FERRY_CA_IDENTITY_NOT_ON_NODE/);
  assert.match(refused.message, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/db/);
  assert.match(refused.message, /node "node-a"/);
  const line = log.lines.find(
    (l) => l.msg === 'CA request refused' && l.fields.code === 'FERRY_CA_IDENTITY_NOT_ON_NODE',
  );
  assert.ok(line, 'refusal is logged');
  assert.equal(line.level, 'warn');
  assert.equal(line.fields.node, 'node-a');
  assert.ok(!JSON.stringify(log.lines).includes('token-node-a'), 'tokens are never logged');

  const anonymous = await fetchError(await client(t, server, ca), WEB);
  assert.match(anonymous.message, /UNAUTHENTICATED.*FERRY_CA_UNAUTHENTICATED/);
  const stranger = await fetchError(await client(t, server, ca, 'guessed'), WEB);
  assert.match(stranger.message, /UNAUTHENTICATED.*unknown bearer token/);
});

test('requests the CA must refuse: other trust domain, impersonation mismatch', async (t) => {
  const { ca, server } = await startCa(t);
  const c = await client(t, server, ca);
  const wrongTd = await fetchError(c, spiffeId('evil.example', 'default', 'web'));
  assert.equal(wrongTd.code, 'FERRY_CA_REQUEST_REFUSED');
  assert.match(wrongTd.message, /INVALID_ARGUMENT.*FERRY_CA_WRONG_TRUST_DOMAIN/);

  // A raw call: CSR for web while claiming to act for db.
  const def = await loadCaServiceDefinition();
  const method = def.CreateCertificate as grpc.MethodDefinition<Record<string, unknown>, unknown>;
  const raw = new grpc.Client(server.address, grpc.credentials.createSsl(Buffer.from(ca.trustBundlePem().join('\n'))));
  t.after(() => raw.close());
  const req = encodeCertificateRequest({
    csrPem: (await createCsr(WEB)).csrPem,
    validitySeconds: 0,
    impersonatedIdentity: formatSpiffeId(DB),
  });
  const err = await new Promise<grpc.ServiceError | null>((resolve) =>
    raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, req, (e) => resolve(e)),
  );
  assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
  assert.match(err?.details ?? '', /^FERRY_CA_IDENTITY_MISMATCH: .*sa\/db.*sa\/web/);
});

test('the client refuses a CA it cannot verify, and reports an unreachable CA', async (t) => {
  const { server } = await startCa(t);
  const stranger = await CertificateAuthority.generate({ trustDomain: TD });
  const distrusting = await client(t, server, stranger);
  assert.equal((await fetchError(distrusting, WEB)).code, 'FERRY_CA_UNREACHABLE');

  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve())); // a port nobody listens on
  const nowhere = await CaClient.create({ address: `127.0.0.1:${port}`, roots: { pem: stranger.trustBundlePem() } });
  t.after(() => nowhere.close());
  assert.equal((await fetchError(nowhere, WEB)).code, 'FERRY_CA_UNREACHABLE');
});

test('the client checks what a misbehaving CA returns', async (t) => {
  const ca = await CertificateAuthority.generate({ trustDomain: TD });
  let answer: 'other-identity' | 'other-key' | 'empty' = 'other-identity';
  const def = await loadCaServiceDefinition();
  const evil = new grpc.Server();
  evil.addService(def, {
    CreateCertificate: (_call: unknown, cb: grpc.sendUnaryData<{ cert_chain: readonly string[] }>) => {
      const forId = answer === 'other-identity' ? DB : WEB;
      createCsr(forId)
        .then((csr) => ca.sign({ csrPem: csr.csrPem }))
        .then((res) => cb(null, { cert_chain: answer === 'empty' || !res.ok ? [] : res.value.certChainPem }));
    },
  });
  const serving = await ca.issueServingCertificate({ ipAddresses: ['127.0.0.1'] });
  const creds = grpc.ServerCredentials.createSsl(null, [
    { private_key: Buffer.from(serving.privateKeyPem), cert_chain: Buffer.from(serving.certChainPem.join('\n')) },
  ]);
  const port = await new Promise<number>((resolve, reject) =>
    evil.bindAsync('127.0.0.1:0', creds, (e, p) => (e ? reject(e) : resolve(p))),
  );
  t.after(() => evil.forceShutdown());
  const c = await CaClient.create({ address: `127.0.0.1:${port}`, roots: { pem: ca.trustBundlePem() } });
  t.after(() => c.close());

  const wrongId = await fetchError(c, WEB);
  assert.equal(wrongId.code, 'FERRY_CA_RESPONSE_IDENTITY_MISMATCH');
  assert.match(wrongId.message, /sa\/web.*sa\/db/);
  answer = 'other-key';
  const wrongKey = await fetchError(c, WEB);
  assert.equal(wrongKey.code, 'FERRY_CA_RESPONSE_INVALID');
  assert.match(wrongKey.message, /another key/);
  answer = 'empty';
  assert.equal((await fetchError(c, WEB)).code, 'FERRY_CA_RESPONSE_INVALID');
});

/** Sends `bytes` and half-closes; resolves when the server has closed the connection. */
async function hostileTcp(port: number, bytes: Buffer): Promise<void> {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {}); // resets are an acceptable answer to garbage
  sock.on('data', () => {});
  await once(sock, 'connect');
  sock.end(bytes);
  await once(sock, 'close');
}

/** Completes a TLS handshake (ALPN h2), sends `bytes`, half-closes; resolves when the connection closed. */
async function hostileTls(port: number, bytes: Buffer): Promise<void> {
  const sock = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false, ALPNProtocols: ['h2'] });
  sock.on('error', () => {});
  sock.on('data', () => {});
  await once(sock, 'secureConnect');
  sock.end(bytes);
  await once(sock, 'close');
}

test('garbage, truncated TLS and broken HTTP/2 on the CA port do not stop it', async (t) => {
  const { ca, server } = await startCa(t);
  const c = await client(t, server, ca);
  const random = (n: number): Buffer => Buffer.from(crypto.getRandomValues(new Uint8Array(n)));
  const clientHelloStart = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
  const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  const attacks: [string, () => Promise<void>][] = [
    ['random bytes', () => hostileTcp(server.port, random(4096))],
    ['plaintext HTTP/1', () => hostileTcp(server.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))],
    ['truncated ClientHello', () => hostileTcp(server.port, clientHelloStart)],
    ['TLS then random bytes', () => hostileTls(server.port, random(2048))],
    ['TLS then half an HTTP/2 preface', () => hostileTls(server.port, preface.subarray(0, 10))],
    [
      'TLS, preface, then a truncated frame',
      () => hostileTls(server.port, Buffer.concat([preface, Buffer.from([0, 0, 64, 4, 0])])),
    ],
    ['TLS, preface, then a garbage frame', () => hostileTls(server.port, Buffer.concat([preface, random(512)]))],
  ];
  for (const [name, attack] of attacks) {
    await attack();
    const cert = await c.fetch(WEB);
    assert.deepEqual(cert.identity, WEB, `CA still serves after: ${name}`);
  }
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? hostileTls : hostileTcp)(server.port, random(300))));
  assert.deepEqual((await c.fetch(DB)).identity, DB);
});
