// Delta xDS under TLS (ConfigXdsSource, as the ztunnel's --xds-address/--xds-root wiring uses it) and
// under hostile bytes on the xDS port: garbage TCP, a truncated HTTP/2 preface, malformed gRPC frames and
// protobuf, unknown type URLs. The server keeps serving every well-behaved client.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startXdsServer, type XdsAckEvent } from '../../src/controller/xds-server.ts';
import { createServingCertificate, generateP256KeyPair, privateKeyToPem } from '../../src/identity/x509.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import { XdsClient } from '../../src/xds/client.ts';
import { ADDRESS_TYPE_URL, DELTA_ADS_PATH, encodeMessage, loadXdsProtos } from '../../src/xds/proto.ts';
import { ConfigXdsSource, parseXdsAddress } from '../../src/ztunnel/config-xds-source.ts';
import { service, workload } from '../helpers/mesh-builders.ts';
import { createTestPki } from '../helpers/test-pki.ts';
import { CapturingLogger, Events } from '../helpers/xds-events.ts';

const protos = await loadXdsProtos();
const MESH = {
  workloads: [workload('a', '10.0.0.1', { services: { 'default/svc.default.svc.cluster.local': { 80: 8080 } } })],
  services: [service('svc', '10.96.0.1')],
  policies: [],
};

async function servingTls(pki: Awaited<ReturnType<typeof createTestPki>>) {
  const keys = await generateP256KeyPair();
  const now = Date.now();
  const cert = await createServingCertificate({
    subjectPublicKey: keys.publicKey,
    issuerCertificate: pki.rootCert,
    issuerKey: pki.rootKeys.privateKey,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 3600_000),
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  return { certChainPem: cert.toString('pem'), keyPem: await privateKeyToPem(keys.privateKey) };
}

test('parseXdsAddress accepts host:port and [v6]:port, refuses the rest', () => {
  assert.deepEqual(parseXdsAddress('ferry-controller.ferry-system.svc:15012'), {
    ok: true,
    host: 'ferry-controller.ferry-system.svc',
    port: 15012,
  });
  assert.deepEqual(parseXdsAddress('[::1]:15012'), { ok: true, host: '::1', port: 15012 });
  for (const bad of ['', 'host', 'host:0', 'host:70000', '::1:15012', 'a b:1', '[zz]:1']) {
    assert.equal(parseXdsAddress(bad).ok, false, bad);
  }
});

test('TLS: ConfigXdsSource with --xds-root syncs; a wrong root never does and the store stays empty', async (t) => {
  const pki = await createTestPki();
  const server = await startXdsServer({ tls: await servingTls(pki) });
  t.after(() => server.close());
  server.publish(MESH);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-xds-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rootPath = join(dir, 'root.pem');
  await writeFile(rootPath, pki.rootPem);

  const store = new MeshStore();
  const source = new ConfigXdsSource(
    { address: server.address, rootPath, ip: '127.0.0.1', node: 'node-tls' },
    store,
    new CapturingLogger(),
  );
  t.after(() => source.close());
  const outcome = await source.load(t.signal);
  assert.deepEqual(outcome, { ok: true, version: store.view.version });
  assert.equal(store.view.workloads.length, 1);
  assert.equal(store.view.serviceByVip('', '10.96.0.1')?.name, 'svc');
  assert.equal(source.status()?.nodeId, 'ztunnel~127.0.0.1~node-tls');
  assert.ok(source.loads >= 2);

  const otherPki = await createTestPki();
  const wrongRoot = join(dir, 'wrong.pem');
  await writeFile(wrongRoot, otherPki.rootPem);
  const store2 = new MeshStore();
  const log = new CapturingLogger();
  const wrong = new ConfigXdsSource(
    { address: server.address, rootPath: wrongRoot, ip: '127.0.0.1', node: 'n2' },
    store2,
    log,
  );
  t.after(() => wrong.close());
  const abort = new AbortController();
  void log.events.waitFor((l) => l.fields.code === 'FERRY_XDS_STREAM_FAILED').then(() => abort.abort());
  const failed = await wrong.load(abort.signal);
  assert.equal(failed.ok, false);
  assert.equal(store2.view.workloads.length, 0);

  const missing = new ConfigXdsSource(
    { address: server.address, rootPath: join(dir, 'nope.pem'), ip: '127.0.0.1', node: 'n3' },
    new MeshStore(),
    new CapturingLogger(),
  );
  const unreadable = await missing.load();
  assert.equal(unreadable.ok, false);
  if (!unreadable.ok) assert.match(unreadable.errors[0] ?? '', /nope\.pem: cannot read the xDS root/);
});

/** Opens an HTTP/2 gRPC call to the ADS method and sends `body` raw; resolves when the server closes it. */
async function rawGrpc(port: number, body: Buffer, end: boolean): Promise<void> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => {});
  try {
    const req = session.request({
      ':method': 'POST',
      ':path': DELTA_ADS_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    req.on('error', () => {});
    req.resume();
    req.write(body);
    if (end) req.end();
    await once(req, 'close');
  } finally {
    session.destroy();
  }
}

function grpcFrame(payload: Buffer, declaredLength = payload.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, payload]);
}

test('hostile bytes on the xDS port leave the server serving others', async (t) => {
  const acks = new Events<XdsAckEvent>();
  const log = new CapturingLogger();
  const server = await startXdsServer({ log, onAck: acks.push });
  t.after(() => server.close());
  server.publish(MESH);

  const store = new MeshStore();
  const client = new XdsClient({
    address: server.address,
    tls: null,
    nodeId: 'ztunnel~127.0.0.1~good',
    nodeName: 'good',
    store,
  });
  t.after(() => client.close());
  await client.start();
  await client.whenSynced(t.signal);

  // Garbage TCP and a truncated HTTP/2 connection preface.
  for (const bytes of [
    Buffer.from('\x16\x03\x01garbage\r\n\r\n\x00\xff'.repeat(50)),
    Buffer.from('PRI * HTTP/2.0\r\n\r\nS'),
  ]) {
    const sock = net.connect(server.port, '127.0.0.1');
    sock.on('error', () => {});
    await once(sock, 'connect');
    sock.end(bytes);
    sock.resume();
    await once(sock, 'close');
  }
  // gRPC calls with: invalid protobuf; a frame longer than what follows; a compressed flag we never
  // negotiated; a valid request for an unknown type URL and a stale nonce (then half-closed).
  await rawGrpc(server.port, grpcFrame(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])), true);
  await rawGrpc(server.port, grpcFrame(Buffer.from([0x12, 0x01]), 1000), true);
  const compressed = grpcFrame(Buffer.from([1, 2, 3]));
  compressed[0] = 1;
  await rawGrpc(server.port, compressed, true);
  const unknownType = encodeMessage(protos.request, {
    node: { id: 'evil' },
    type_url: 'type.googleapis.com/evil.Type',
  });
  const staleNonce = encodeMessage(protos.request, { type_url: ADDRESS_TYPE_URL, response_nonce: '999-1' });
  await rawGrpc(server.port, Buffer.concat([grpcFrame(unknownType), grpcFrame(staleNonce)]), true);
  assert.ok(log.lines.some((l) => l.fields.code === 'FERRY_XDS_BAD_REQUEST'));

  // The established client still gets pushes, and a new client still syncs.
  const next = { ...MESH, workloads: [...MESH.workloads, workload('b', '10.0.0.2')] };
  server.publish(next);
  const gen = server.generation(ADDRESS_TYPE_URL);
  await acks.waitFor(
    (e) => e.nodeId === 'ztunnel~127.0.0.1~good' && e.typeUrl === ADDRESS_TYPE_URL && e.generation >= gen,
  );
  assert.equal(store.view.workloads.length, 2);

  const store2 = new MeshStore();
  const late = new XdsClient({
    address: server.address,
    tls: null,
    nodeId: 'ztunnel~127.0.0.1~late',
    nodeName: 'late',
    store: store2,
  });
  t.after(() => late.close());
  await late.start();
  await late.whenSynced(t.signal);
  assert.equal(store2.view.workloads.length, 2);
});
