// Every byte the waypoint forwards arrives intact, whatever framing the backend chose: Content-Length,
// chunked, empty, 204/304, HEAD, close-delimited (to HTTP/1.0 clients), 64 MiB bodies compared by hash in
// both directions; over HTTP/1.0 and 1.1 (keep-alive across many requests, pipelining), h2c and an
// upgraded (WebSocket) connection. The backend is node:http as applications write it (res.end(body),
// string bodies), which is what exposed Node's Http2Stream batched-write bug (docs/architecture.md,
// "HBONE tunnels as byte streams"): the first 16 bytes of such responses were freed heap memory.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { readResponses } from '../helpers/http1-reader.ts';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { startWaypointHarness } from '../helpers/waypoint-harness.ts';

const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');
const VIP = '10.96.2.10';
const MiB = 1024 * 1024;
const BIG = 64 * MiB;
// 1 MiB + 7 bytes of noise, repeated: block boundaries never line up with the proxies' buffer sizes.
const BLOCK = randomBytes(MiB + 7);

function bodyOf(n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  for (let off = 0; off < n; off += BLOCK.length) BLOCK.copy(out, off, 0, Math.min(BLOCK.length, n - off));
  return out;
}
const expectedSha = (n: number): string => {
  const h = createHash('sha256');
  for (let off = 0; off < n; off += BLOCK.length) h.update(BLOCK.subarray(0, Math.min(BLOCK.length, n - off)));
  return h.digest('hex');
};
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Streams `n` bytes of BLOCK noise into `res`, minding backpressure. */
async function streamBody(res: http.ServerResponse, n: number): Promise<void> {
  for (let off = 0; off < n; off += BLOCK.length) {
    if (!res.write(BLOCK.subarray(0, Math.min(BLOCK.length, n - off)))) await once(res, 'drain');
  }
  res.end();
}

/** A node:http backend answering with every framing an application produces. */
async function startFramingBackend(host: string): Promise<{ port: number; close(): void }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const n = Number(url.searchParams.get('n') ?? '0');
    const chunks: Buffer[] = [];
    const h = createHash('sha256');
    let length = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      length += c.length;
      if (length <= MiB) chunks.push(c);
    });
    req.on('end', () => {
      switch (url.pathname) {
        case '/len': // Content-Length from res.end(Buffer)
          if (req.method === 'HEAD') res.setHeader('content-length', n);
          res.end(bodyOf(n));
          return;
        case '/text': // Content-Length from res.end(string)
          res.setHeader('content-type', 'text/plain');
          res.end('t'.repeat(n));
          return;
        case '/chunked':
          res.write('first chunk, a string; ');
          res.write(bodyOf(n));
          res.end('last chunk');
          return;
        case '/empty':
          res.end();
          return;
        case '/204':
          res.writeHead(204).end();
          return;
        case '/304':
          res.writeHead(304, { etag: '"v1"' }).end();
          return;
        case '/big':
          res.writeHead(200, { 'content-length': n });
          void streamBody(res, n);
          return;
        case '/sha':
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ length, sha256: h.digest('hex'), head: Buffer.concat(chunks).subarray(0, 32) }));
          return;
        default:
          res.writeHead(404).end('no such path');
      }
    });
  });
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    // Answer the upgrade with a string write and a separate empty write, the shape that used to be cut.
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`);
    socket.write('');
    if (head.length > 0) socket.write(head);
    socket.pipe(socket);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function mesh() {
  return meshConfig({
    workloads: [
      workload('app-a', '127.0.0.41', { services: { 'default/app.default.svc.cluster.local': { 80: 8080 } } }),
    ],
    services: [{ ...service('app', VIP, { ports: { 80: 8080 } }), waypoint: WAYPOINT }],
  });
}

test('waypoint framing: every byte arrives intact, whatever the framing', async (t) => {
  const h = await startWaypointHarness(t, [{ name: 'app-a', ip: '127.0.0.41', backend: startFramingBackend }], () => ({
    mesh: mesh(),
  }));
  const tunnel = async (): Promise<Duplex> => {
    const s = await h.openTunnel(VIP, 80);
    s.on('error', () => {});
    return s;
  };

  await t.test('HTTP/1.0 client: Content-Length, string and chunked bodies (close-delimited to 1.0)', async () => {
    for (const [path, expect] of [
      ['/len?n=100', { framing: 'content-length', body: bodyOf(100) }],
      ['/text?n=5', { framing: 'content-length', body: Buffer.from('ttttt') }],
      ['/empty', { framing: 'content-length', body: Buffer.alloc(0) }],
      [
        '/chunked?n=10',
        {
          framing: 'close',
          body: Buffer.concat([Buffer.from('first chunk, a string; '), bodyOf(10), Buffer.from('last chunk')]),
        },
      ],
    ] as const) {
      const s = await tunnel();
      const done = readResponses(s, ['GET']);
      s.write(`GET ${path} HTTP/1.0\r\nHost: app\r\n\r\n`);
      const [r] = await done;
      assert.ok(r !== undefined);
      assert.match(r.statusLine, /^HTTP\/1\.[01] 200 OK$/, `${path}: ${JSON.stringify(r.head)}`);
      assert.equal(r.framing, expect.framing, path);
      assert.deepEqual(r.body, expect.body, path);
      s.destroy();
    }
  });

  await t.test('HTTP/1.1 keep-alive: 200 requests of every shape on one connection', async () => {
    const s = await tunnel();
    const shapes = [
      { method: 'GET', path: '/len?n=1', status: 200, body: bodyOf(1) },
      { method: 'GET', path: '/len?n=70000', status: 200, body: bodyOf(70_000) },
      { method: 'GET', path: '/text?n=3', status: 200, body: Buffer.from('ttt') },
      { method: 'GET', path: '/empty', status: 200, body: Buffer.alloc(0) },
      { method: 'GET', path: '/204', status: 204, body: Buffer.alloc(0) },
      { method: 'GET', path: '/304', status: 304, body: Buffer.alloc(0) },
      { method: 'HEAD', path: '/len?n=4096', status: 200, body: Buffer.alloc(0) },
      {
        method: 'GET',
        path: '/chunked?n=3000',
        status: 200,
        body: Buffer.concat([Buffer.from('first chunk, a string; '), bodyOf(3000), Buffer.from('last chunk')]),
      },
    ];
    for (let i = 0; i < 200; i++) {
      const shape = shapes[i % shapes.length];
      assert.ok(shape !== undefined);
      const done = readResponses(s, [shape.method]);
      s.write(`${shape.method} ${shape.path} HTTP/1.1\r\nHost: app\r\n\r\n`);
      const [r] = await done;
      assert.ok(r !== undefined);
      assert.equal(r.status, shape.status, `request ${i} ${shape.path}: ${JSON.stringify(r.head)}`);
      assert.match(r.statusLine, /^HTTP\/1\.1 \d{3} /);
      assert.deepEqual(r.body, shape.body, `request ${i} ${shape.method} ${shape.path}`);
      if (shape.method === 'HEAD') assert.equal(r.headers.get('content-length'), '4096');
      assert.notEqual(r.headers.get('connection'), 'close', 'the connection stays open');
    }
    s.destroy();
  });

  await t.test('HTTP/1.1 pipelining: three requests in one write, three responses in order', async () => {
    const s = await tunnel();
    const done = readResponses(s, ['GET', 'HEAD', 'GET']);
    s.write(
      'GET /len?n=11 HTTP/1.1\r\nHost: app\r\n\r\n' +
        'HEAD /len?n=22 HTTP/1.1\r\nHost: app\r\n\r\n' +
        'GET /text?n=33 HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n',
    );
    const [a, b, c] = await done;
    assert.deepEqual(a?.body, bodyOf(11));
    assert.equal(b?.headers.get('content-length'), '22');
    assert.equal(b?.bodyLength, 0);
    assert.deepEqual(c?.body, Buffer.from('t'.repeat(33)));
    s.destroy();
  });

  await t.test('HTTP/1.1: a 64 MiB response and a 64 MiB upload, hash compared', async () => {
    const s = await tunnel();
    const down = readResponses(s, ['GET']);
    s.write(`GET /big?n=${BIG} HTTP/1.1\r\nHost: app\r\n\r\n`);
    const [r] = await down;
    assert.equal(r?.status, 200);
    assert.equal(r?.bodyLength, BIG);
    assert.equal(r?.bodySha256, expectedSha(BIG));

    const up = readResponses(s, ['POST']);
    s.write(`POST /sha HTTP/1.1\r\nHost: app\r\nContent-Length: ${BIG}\r\n\r\n`);
    for (let off = 0; off < BIG; off += BLOCK.length) {
      if (!s.write(BLOCK.subarray(0, Math.min(BLOCK.length, BIG - off)))) await once(s, 'drain');
    }
    const [u] = await up;
    const seen = JSON.parse(u?.body.toString() ?? '{}') as { length: number; sha256: string };
    assert.equal(seen.length, BIG);
    assert.equal(seen.sha256, expectedSha(BIG));
    s.destroy();
  });

  await t.test('HTTP/1.1 POST with a Content-Length body: the backend receives it intact', async () => {
    const s = await tunnel();
    const payload = randomBytes(5000);
    const done = readResponses(s, ['POST']);
    s.write(`POST /sha HTTP/1.1\r\nHost: app\r\nContent-Length: ${payload.length}\r\n\r\n`);
    s.write(payload);
    const [r] = await done;
    const seen = JSON.parse(r?.body.toString() ?? '{}') as { length: number; sha256: string };
    assert.deepEqual(seen, { ...seen, length: payload.length, sha256: sha(payload) });
    s.destroy();
  });

  await t.test('h2c client: every shape, a 64 MiB body, an upload', async () => {
    const s = await tunnel();
    const session = http2.connect(`http://${VIP}`, { createConnection: () => s as never });
    t.after(() => session.destroy());
    const get = async (method: string, path: string, body?: Buffer) => {
      const stream = session.request({ ':method': method, ':path': path });
      const hash = createHash('sha256');
      let length = 0;
      const kept: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        hash.update(c);
        length += c.length;
        if (length <= MiB) kept.push(c);
      });
      // A 204/304/HEAD stream may end with its headers: listen before anything is awaited.
      const ended = once(stream, 'end');
      stream.end(body);
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      await ended;
      return { status: headers[':status'], length, sha: hash.digest('hex'), body: Buffer.concat(kept), headers };
    };
    assert.deepEqual((await get('GET', '/len?n=100')).body, bodyOf(100));
    assert.deepEqual((await get('GET', '/text?n=9')).body, Buffer.from('ttttttttt'));
    assert.equal((await get('GET', '/chunked?n=7')).length, 23 + 7 + 10);
    assert.equal((await get('GET', '/empty')).length, 0);
    assert.equal((await get('GET', '/204')).status, 204);
    assert.equal((await get('GET', '/304')).status, 304);
    const head = await get('HEAD', '/len?n=123');
    assert.equal(head.length, 0);
    assert.equal(head.headers['content-length'], '123');
    const big = await get('GET', `/big?n=${BIG}`);
    assert.equal(big.length, BIG);
    assert.equal(big.sha, expectedSha(BIG));
    const payload = randomBytes(300_000);
    const up = await get('POST', '/sha', payload);
    assert.equal(JSON.parse(up.body.toString()).sha256, sha(payload));
  });

  await t.test('WebSocket upgrade: the 101 head and 8 MiB echoed both ways, intact', async () => {
    const s = await tunnel();
    const got: Buffer[] = [];
    let total = 0;
    s.on('data', (c: Buffer) => {
      got.push(c);
      total += c.length;
    });
    s.write('GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    const headEnd = async (): Promise<number> => {
      for (;;) {
        const i = Buffer.concat(got).indexOf('\r\n\r\n');
        if (i !== -1) return i + 4;
        await once(s, 'data');
      }
    };
    const end = await headEnd();
    const head = Buffer.concat(got).subarray(0, end).toString('latin1');
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
    const payload = bodyOf(8 * MiB);
    s.write(payload);
    while (total - end < payload.length) await once(s, 'data');
    assert.equal(sha(Buffer.concat(got).subarray(end)), sha(payload));
    s.destroy();
  });
});
