// The SOCKS5 entry over real sockets: CONNECT to IPv4 and domain targets, early data, the reply codes a
// client sees, and hostile clients (garbage, truncated, oversized, stalled) that never stop the server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import {
  type Socks5ConnectRequest,
  Socks5Server,
  type Socks5ServerOptions,
  socks5RepForError,
} from '../../src/ztunnel/socks5.ts';
import { startEchoServer } from '../helpers/echo-server.ts';

/** The outbound stand-in: dial the destination directly. */
async function dialDirect(req: Socks5ConnectRequest): ReturnType<Socks5ServerOptions['onConnect']> {
  const upstream = netConnect({ host: req.dst.ip, port: req.dst.port, allowHalfOpen: true });
  upstream.on('error', () => {});
  try {
    await Promise.race([once(upstream, 'connect'), once(upstream, 'error').then(([e]) => Promise.reject(e))]);
    return { ok: true, upstream };
  } catch (err) {
    return { ok: false, rep: socks5RepForError(err) };
  }
}

async function setup(t: TestContext, opts: Partial<Socks5ServerOptions> = {}) {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const requests: Socks5ConnectRequest[] = [];
  const server = await Socks5Server.listen({
    host: '127.0.0.1',
    port: 0,
    onConnect: (req) => {
      requests.push(req);
      return dialDirect(req);
    },
    ...opts,
  });
  stack.defer(() => server.close());
  const echo = stack.use(await startEchoServer());
  const open = async (localAddress = '127.0.0.1'): Promise<Socket> => {
    const s = netConnect({ host: server.address.ip, port: server.address.port, localAddress });
    s.on('error', () => {});
    stack.defer(() => {
      s.destroy();
    });
    await once(s, 'connect');
    return s;
  };
  return { stack, server, echo, requests, open };
}

/** Reads exactly n bytes (the handshake replies are small). */
async function readN(s: Socket, n: number): Promise<Buffer> {
  let buf = Buffer.alloc(0);
  while (buf.length < n) {
    const chunk = s.read() as Buffer | null;
    if (chunk !== null) buf = Buffer.concat([buf, chunk]);
    else if (s.readableEnded || s.destroyed) break;
    else await Promise.race([once(s, 'readable'), once(s, 'close')]);
  }
  if (buf.length > n) s.unshift(buf.subarray(n));
  return buf.subarray(0, n);
}

const ipv4Request = (ip: string, port: number): Buffer =>
  Buffer.from([5, 1, 0, 1, ...ip.split('.').map(Number), port >> 8, port & 0xff]);

async function handshake(s: Socket, request: Buffer): Promise<number> {
  s.write(Buffer.from([5, 1, 0]));
  assert.deepEqual([...(await readN(s, 2))], [5, 0]);
  s.write(request);
  const reply = await readN(s, 10);
  return reply[1] ?? -1;
}

function closed(s: Socket): Promise<unknown> {
  s.resume();
  return s.closed ? Promise.resolve() : once(s, 'close');
}

test('CONNECT to an IPv4 target carries bytes both ways; srcIp is the client address', async (t) => {
  const { echo, requests, open } = await setup(t);
  const s = await open('127.0.0.9');
  assert.equal(await handshake(s, ipv4Request('127.0.0.1', echo.port)), 0);
  const payload = randomBytes(1024 * 1024);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.end(payload);
  await once(s, 'end');
  assert.ok(Buffer.concat(chunks).equals(payload));
  assert.equal(requests[0]?.srcIp, '127.0.0.9');
  assert.deepEqual(requests[0]?.dst, { ip: '127.0.0.1', port: echo.port });
});

test('a domain target is resolved with dns.lookup and the result is the destination', async (t) => {
  const { address } = await lookup('localhost');
  const { requests, open, stack } = await setup(t);
  const echo = stack.use(await startEchoServer(address));
  const s = await open();
  const req = Buffer.concat([
    Buffer.from([5, 1, 0, 3, 9]),
    Buffer.from('localhost'),
    Buffer.from([echo.port >> 8, echo.port & 0xff]),
  ]);
  assert.equal(await handshake(s, req), 0);
  assert.deepEqual(requests[0]?.dst, { ip: address, port: echo.port });
  assert.equal(requests[0]?.hostname, 'localhost');
  s.end('hi');
  assert.equal((await readN(s, 2)).toString(), 'hi');
});

test('greeting, request and early data in one write all arrive', async (t) => {
  const { echo, open } = await setup(t);
  const s = await open();
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), ipv4Request('127.0.0.1', echo.port), Buffer.from('early')]));
  const replies = await readN(s, 12);
  assert.deepEqual([...replies.subarray(0, 4)], [5, 0, 5, 0]);
  assert.equal((await readN(s, 5)).toString(), 'early');
});

test('reply codes: refused upstream, policy refusal, unsupported command and address type, no auth method', async (t) => {
  const { open, server } = await setup(t);
  const dead = await startEchoServer();
  await dead.close();
  assert.equal(await handshake(await open(), ipv4Request('127.0.0.1', dead.port)), 0x05);
  assert.equal(await handshake(await open(), Buffer.from([5, 2, 0, 1, 127, 0, 0, 1, 0, 80])), 0x07);
  assert.equal(await handshake(await open(), Buffer.from([5, 1, 0, 9, 127, 0, 0, 1, 0, 80])), 0x08);
  const noAuth = await open();
  noAuth.write(Buffer.from([5, 1, 2])); // username/password only
  assert.deepEqual([...(await readN(noAuth, 2))], [5, 0xff]);
  await closed(noAuth);
  void server;
  const { open: openDenied } = await setup(t, { onConnect: async () => ({ ok: false, rep: 0x02 }) });
  const denied = await openDenied();
  assert.equal(await handshake(denied, ipv4Request('127.0.0.1', 80)), 0x02);
  await closed(denied);
});

test('hostile clients are closed and the next client is still served', async (t) => {
  const { echo, open, server } = await setup(t, { handshakeTimeoutMs: 50 });
  const hostile: Buffer[] = [
    randomBytes(4096),
    Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
    Buffer.from([5]), // truncated greeting
    Buffer.from([5, 255, 0, 1]), // greeting claiming 255 methods, truncated
    Buffer.concat([Buffer.from([5, 1, 0, 5, 1, 0, 3, 255]), Buffer.from('a'.repeat(40))]), // oversized domain, truncated
    Buffer.from([5, 1, 0, 4, 1, 0, 1]), // wrong request version
  ];
  for (const bytes of hostile) {
    const s = await open();
    s.end(bytes);
    await closed(s);
  }
  // A client that stalls mid-handshake without closing is dropped by the handshake deadline.
  const stalled = await open();
  stalled.write(Buffer.from([5, 1]));
  await closed(stalled);
  const good = await open();
  assert.equal(await handshake(good, ipv4Request('127.0.0.1', echo.port)), 0);
  good.end('still serving');
  assert.equal((await readN(good, 13)).toString(), 'still serving');
  assert.ok(server.clientCount >= 1);
});
