// The waypoint's HTTP handling over real HBONE tunnels: h2c prior knowledge, retries keyed by request id,
// and hostile input (garbage, oversized headers, bad chunking, invalid HTTP/2 frames) that costs only the
// offending tunnel: the waypoint keeps serving everyone.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { parseMetrics } from '../helpers/parse-metrics.ts';
import { startWaypointHarness } from '../helpers/waypoint-harness.ts';

const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');

function mesh() {
  return meshConfig({
    workloads: [
      workload('echo-a', '127.0.0.31', { services: { 'default/echo.default.svc.cluster.local': { 80: 8080 } } }),
      workload('grpc-a', '127.0.0.32', { services: { 'default/grpc.default.svc.cluster.local': { 80: 8080 } } }),
    ],
    services: [
      { ...service('echo', '10.96.1.10', { ports: { 80: 8080 } }), waypoint: WAYPOINT },
      {
        ...service('grpc', '10.96.1.20'),
        ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'grpc' as const }],
        waypoint: WAYPOINT,
      },
    ],
  });
}

/** Everything the waypoint sends back on a raw tunnel until it closes (or 2 s pass). */
async function exchange(tunnel: Duplex, bytes: Buffer | string): Promise<string> {
  const chunks: Buffer[] = [];
  tunnel.on('data', (c: Buffer) => chunks.push(c));
  tunnel.on('error', () => {});
  tunnel.write(bytes);
  await Promise.race([once(tunnel, 'end'), once(tunnel, 'close'), new Promise((r) => setTimeout(r, 2_000))]);
  tunnel.destroy();
  return Buffer.concat(chunks).toString('latin1');
}

test('waypoint protocols: h2c, retries by request id, hostile input', async (t) => {
  const pods = [
    { name: 'echo-a', ip: '127.0.0.31' },
    { name: 'grpc-a', ip: '127.0.0.32', h2c: true },
  ];
  const h = await startWaypointHarness(t, pods, () => ({
    mesh: mesh(),
    httpRoutes: [
      {
        metadata: { name: 'retrying', namespace: 'default' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
          rules: [
            {
              matches: [{ path: { type: 'PathPrefix', value: '/timeout' } }],
              backendRefs: [{ name: 'echo', port: 80 }],
              timeouts: { request: '300ms' },
            },
            { backendRefs: [{ name: 'echo', port: 80 }], retry: { attempts: 2, codes: [503], backoff: '1ms' } },
          ],
        },
      },
    ],
  }));
  const ok = async () => assert.equal((await h.request('10.96.1.10', 80, { path: '/ok' })).status, 200);

  await t.test('h2c prior knowledge through the tunnel', async () => {
    const tunnel = await h.openTunnel('10.96.1.10', 80);
    const session = http2.connect('http://10.96.1.10', { createConnection: () => tunnel as never });
    t.after(() => session.destroy());
    const stream = session.request({ ':path': '/h2?x=1', ':method': 'GET' });
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    let body = '';
    stream.setEncoding('utf8').on('data', (d: string) => {
      body += d;
    });
    await once(stream, 'end');
    assert.equal(headers[':status'], 200);
    assert.equal(JSON.parse(body).path, '/h2');
  });

  await t.test(
    'HTTP/2 toward an appProtocol http2 backend: h2 upstream, te: trailers kept, trailers relayed',
    async () => {
      const tunnel = await h.openTunnel('10.96.1.20', 80);
      const session = http2.connect('http://10.96.1.20', { createConnection: () => tunnel as never });
      t.after(() => session.destroy());
      const stream = session.request({
        ':path': '/grpc.Echo/Say',
        ':method': 'POST',
        te: 'trailers',
        'content-type': 'application/grpc',
      });
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      let body = '';
      let trailers: http2.IncomingHttpHeaders = {};
      stream.on('trailers', (tr: http2.IncomingHttpHeaders) => {
        trailers = tr;
      });
      stream.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      await once(stream, 'end');
      assert.equal(headers[':status'], 200);
      const echo = JSON.parse(body);
      assert.equal(echo.pod, 'grpc-a');
      assert.equal(echo.protocol, '2.0', 'the backend was spoken to in HTTP/2');
      assert.equal(echo.te, 'trailers');
      assert.equal(trailers['grpc-status'], '0');
      assert.equal(trailers['x-trailer'], 'yes');
      // The request metric carries the call's gRPC status, read from the backend's trailers.
      const { host, port } = h.waypoint.addresses.metrics;
      const scrape = parseMetrics(await (await fetch(`http://${host}:${port}/metrics`)).text());
      const grpc = scrape.query('istio_requests_total', { request_protocol: 'grpc' });
      assert.equal(grpc.length, 1, 'one gRPC series');
      assert.equal(grpc[0]?.labels.grpc_response_status, '0');
    },
  );

  await t.test('retries: 2 failures recovered, 3 return the backend 503, 500 is not retried', async () => {
    const send = async (id: string, times: number, status: number) =>
      (
        await h.request('10.96.1.10', 80, {
          headers: { 'x-request-id': id, 'x-fail-times': String(times), 'x-fail-status': String(status) },
        })
      ).status;
    assert.equal(await send('a', 2, 503), 200);
    assert.equal(await send('b', 3, 503), 503);
    assert.equal(await send('c', 1, 500), 500);
    const line = await h.logs.waitFor((l) => l.msg === 'request' && l.request_id === 'a');
    assert.equal(line.retries, 2);
    // Logged after the whole response went out: a completed exchange is not flagged as closed early.
    assert.equal(line.closed_early, false);
  });

  await t.test('HTTP/1.1 Upgrade (WebSocket style): 101 from the pod, then bytes echo both ways', async () => {
    const tunnel = await h.openTunnel('10.96.1.10', 80);
    tunnel.on('error', () => {});
    let got = '';
    tunnel.setEncoding('latin1').on('data', (d: string) => {
      got += d;
    });
    tunnel.write('GET /ws HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    while (!got.includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 10));
    assert.match(got, /^HTTP\/1\.1 101 Switching Protocols/);
    assert.match(got, /x-pod: echo-a/);
    tunnel.write('ping-through-the-waypoint');
    while (!got.includes('ping-through-the-waypoint')) await new Promise((r) => setTimeout(r, 10));
    tunnel.destroy();
  });

  await t.test('request timeout → 504', async () => {
    assert.equal((await h.request('10.96.1.10', 80, { path: '/timeout?delay=3s' })).status, 504);
  });

  const hostile: [string, Buffer | string, RegExp | string][] = [
    ['garbage', Buffer.from('\x00\x01\x02 not http at all\r\n\r\n', 'latin1'), /^HTTP\/1\.1 400/],
    ['oversized headers', `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, /^HTTP\/1\.1 (400|431)/],
    [
      'bad chunking',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n',
      /^HTTP\/1\.1 400/,
    ],
    [
      'invalid HTTP/2 frame after the preface',
      Buffer.concat([
        Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
        Buffer.from([0, 0, 4, 0xff, 0, 0, 0, 0, 1, 1, 2, 3, 4]),
      ]),
      '\x07\x00\x00\x00\x00\x00', // a GOAWAY frame header: type 7, no flags, stream 0
    ],
  ];
  for (const [what, bytes, expect] of hostile) {
    await t.test(`hostile input: ${what} → refused, the waypoint keeps serving`, async () => {
      const reply = await exchange(await h.openTunnel('10.96.1.10', 80), bytes);
      if (typeof expect === 'string') assert.ok(reply.includes(expect), JSON.stringify(reply));
      else assert.match(reply, expect);
      await ok();
    });
  }
  await t.test('fuzz: 200 random byte strings, then a normal request', async () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 200; i++) {
      const tunnel = await h.openTunnel('10.96.1.10', 80);
      tunnel.on('error', () => {});
      const len = 1 + (rand() % 300);
      const head = i % 3 === 0 ? 'GET / HTTP/1.1\r\n' : i % 3 === 1 ? 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' : '';
      tunnel.end(Buffer.concat([Buffer.from(head), Buffer.from(Array.from({ length: len }, () => rand() % 256))]));
      tunnel.resume();
      setTimeout(() => tunnel.destroy(), 200).unref();
    }
    await ok();
  });
});
