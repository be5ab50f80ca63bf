// HBONE data path over real TLS 1.3 + HTTP/2 + sockets: pool → HboneServer → TCP app, byte-exact transfer,
// half-close both ways, request metadata, and the status codes a client sees.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { ProxyError } from '../../src/errors.ts';
import { HboneStatusError } from '../../src/hbone/client.ts';
import { HboneClientPool } from '../../src/hbone/pool.ts';
import { formatSpiffeId } from '../../src/identity/spiffe-id.ts';
import { buildTlsContexts, hboneServerTlsOptions } from '../../src/identity/tls-context.ts';
import { startEchoServer, startTcpServer } from '../helpers/echo-server.ts';
import { openRawHboneSession, rawRequest, startHboneFixture } from '../helpers/hbone-client.ts';
import { createTestPki } from '../helpers/test-pki.ts';

const pki = await createTestPki();
const clientCert = await pki.issue('default', 'sleep');
const serverCert = await pki.issue('default', 'echo');

async function setup(t: import('node:test').TestContext, opts: Parameters<typeof startHboneFixture>[1] = {}) {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const fixture = stack.use(await startHboneFixture(serverCert, { host: '127.0.0.5', ...opts }));
  const pool = new HboneClientPool();
  stack.defer(() => pool.destroy());
  const connect = (authority: string, extra: Partial<Parameters<HboneClientPool['connect']>[0]> = {}) =>
    pool.connect({
      source: clientCert,
      sourceIp: '127.0.0.7',
      dst: fixture.server.address,
      expectedIdentities: [serverCert.identity],
      authority,
      ...extra,
    });
  return { stack, fixture, pool, connect };
}

function collect(stream: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return once(stream, 'end').then(() => Buffer.concat(chunks));
}

test('10 MiB crosses the tunnel byte-exact in both directions', async (t) => {
  const { stack, connect } = await setup(t);
  const echo = stack.use(await startEchoServer());
  const tunnel = await connect(`127.0.0.1:${echo.port}`);
  const payload = randomBytes(10 * 1024 * 1024);
  const received = collect(tunnel);
  tunnel.end(payload);
  const back = await received;
  assert.equal(back.length, payload.length);
  assert.ok(back.equals(payload), 'echoed bytes differ');
});

test('client half-close: after ending its write side the client still receives the server reply', async (t) => {
  const { stack, connect } = await setup(t);
  const app = stack.use(
    await startTcpServer((socket) => {
      let n = 0;
      socket.on('data', (c: Buffer) => {
        n += c.length;
      });
      socket.on('end', () => socket.end(`got ${n} bytes`)); // replies only after the client's FIN
    }),
  );
  const tunnel = await connect(`127.0.0.1:${app.port}`);
  const reply = collect(tunnel);
  tunnel.end('hello world');
  assert.equal((await reply).toString(), 'got 11 bytes');
});

test('server half-close: after the app ends its write side the client can still send', async (t) => {
  const { stack, connect } = await setup(t);
  const { promise: appReceived, resolve } = Promise.withResolvers<string>();
  const app = stack.use(
    await startTcpServer((socket) => {
      socket.end('bye'); // FIN first, keep reading
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => resolve(Buffer.concat(chunks).toString()));
    }),
  );
  const tunnel = await connect(`127.0.0.1:${app.port}`);
  assert.equal((await collect(tunnel)).toString(), 'bye');
  tunnel.end('late data after the server FIN');
  assert.equal(await appReceived, 'late data after the server FIN');
});

test('the server sees the CONNECT metadata: identity, dialed IP, source IP and headers', async (t) => {
  const { stack, fixture, connect } = await setup(t);
  const echo = stack.use(await startEchoServer());
  const tunnel = await connect(`127.0.0.1:${echo.port}`, {
    headers: {
      baggage: 'k8s.namespace.name=default',
      forwardedFor: { ip: '10.0.0.9', port: 4242 },
      forwardedHost: 'echo.default.svc.cluster.local',
    },
  });
  tunnel.end();
  await collect(tunnel);
  const req = fixture.requests[0];
  assert.ok(req);
  assert.equal(formatSpiffeId(req.peerIdentity), 'spiffe://cluster.local/ns/default/sa/sleep');
  assert.equal(req.dialedIp, '127.0.0.5');
  assert.equal(req.peer.ip, '127.0.0.7');
  assert.equal(req.authority, `127.0.0.1:${echo.port}`);
  assert.equal(req.headers.baggage, 'k8s.namespace.name=default');
  assert.equal(req.headers.forwarded, 'for="10.0.0.9:4242";host=echo.default.svc.cluster.local');
  assert.match(req.headers.traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
});

test('handler rejections reach the client as HboneStatusError with the status', async (t) => {
  for (const status of [401, 503] as const) {
    const { connect, fixture } = await setup(t, { onConnect: (_req, tunnel) => tunnel.reject(status) });
    const err = await connect('127.0.0.1:9').then(
      () => assert.fail('expected a rejection'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof HboneStatusError);
    assert.equal(err.code, 'FERRY_HBONE_UPSTREAM_STATUS');
    assert.equal(err.status, status);
    assert.equal(fixture.requests.length, 1);
  }
});

test('an upstream that refuses the connection yields 503 (the 200 is sent only after connect)', async (t) => {
  const { stack, connect } = await setup(t);
  const app = await startTcpServer(() => {});
  const deadPort = app.port;
  await app.close();
  void stack;
  await assert.rejects(
    connect(`127.0.0.1:${deadPort}`),
    (e: unknown) => e instanceof HboneStatusError && e.status === 503,
  );
});

test('non-CONNECT requests and malformed authorities get 400 without reaching the handler', async (t) => {
  const { fixture } = await setup(t);
  const session = await openRawHboneSession(fixture.server.address, clientCert, [serverCert.identity]);
  t.after(() => session.destroy());
  assert.equal((await rawRequest(session, { ':method': 'GET', ':path': '/' })).status, 400);
  assert.equal((await rawRequest(session, { ':method': 'POST', ':path': '/x' })).status, 400);
  for (const authority of [
    'no-port',
    '1.2.3.4:0',
    '1.2.3.4:99999',
    '[::1:80',
    'a_b:80',
    ':80',
    '1.2.3.4:8o',
    '1.2.3:80',
  ]) {
    const r = await rawRequest(session, { ':method': 'CONNECT', ':authority': authority });
    assert.equal(r.status, 400, `authority ${authority}`);
  }
  // nghttp2 itself resets a CONNECT whose authority is not a valid header value; the session lives on.
  const spaced = await rawRequest(session, { ':method': 'CONNECT', ':authority': 'a b:80' });
  assert.ok(spaced.status === 400 || spaced.rstCode !== null);
  assert.equal(fixture.requests.length, 0);
  assert.ok(fixture.peerErrors.some((e) => e.error.code === 'FERRY_HBONE_BAD_REQUEST'));
  assert.ok(fixture.peerErrors.some((e) => e.error.code === 'FERRY_HBONE_BAD_AUTHORITY'));
  // The session survives bad requests: a good one on it still works.
  const ok = await rawRequest(session, { ':method': 'CONNECT', ':authority': '127.0.0.1:9' });
  assert.equal(ok.status, 503);
});

test('the client sends no SNI', async (t) => {
  const server = createTlsServer(hboneServerTlsOptions(buildTlsContexts(serverCert)));
  const { promise: servername, resolve } = Promise.withResolvers<string | false | null>();
  server.on('secureConnection', (s: TLSSocket) => {
    resolve(s.servername);
    s.destroy();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const pool = new HboneClientPool();
  t.after(() => pool.destroy());
  const { port } = server.address() as { port: number };
  const attempt = pool.connect({
    source: clientCert,
    dst: { ip: '127.0.0.1', port },
    expectedIdentities: [serverCert.identity],
    authority: '127.0.0.1:80',
  });
  await assert.rejects(attempt, (e: unknown) => e instanceof ProxyError && e.code === 'FERRY_HBONE_HANDSHAKE_FAILED');
  assert.equal(await servername, false);
});
