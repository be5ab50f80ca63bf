// The sidecar's L7 handler in-process (src/cli/sidecar-l7.ts; the cluster run is
// test/e2e/sidecar-l7.test.ts): a captured app socket, as the ztunnel's outbound entry hands it over, is
// served as HTTP/1.1 or h2c (sniffed on a real net.Socket), routed by the Service's HTTPRoute to weighted
// backends and retried on 503, against two real HTTP servers outside the mesh (plain TCP upstreams, so no
// certificates are involved: the HBONE upstream is covered by the e2e test).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { test } from 'node:test';
import { sidecarL7 } from '../../src/cli/sidecar-l7.ts';
import { hostSocketFactory } from '../../src/hbone/socket-factory.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import type { Held, XdsHeldState } from '../../src/xds/client-state.ts';
import type { AddressValue, L7Value } from '../../src/xds/convert.ts';
import { service, workload } from '../helpers/mesh-builders.ts';

const VIP = '10.96.7.7';

test('sidecar L7 handler: weighted split and retries for HTTP/1.1 and h2c on a captured socket', async (t) => {
  const stack = new AsyncDisposableStack();
  t.after(() => stack.disposeAsync());
  const seen = new Map<string, number>(); // request id → attempts
  const backend = async (name: string, ip: string): Promise<number> => {
    const server = http.createServer((req, res) => {
      const id = String(req.headers['x-request-id'] ?? '');
      const n = (seen.get(id) ?? 0) + 1;
      seen.set(id, n);
      const flaky = req.headers['x-flaky'] === '1' && n === 1;
      res.writeHead(flaky ? 503 : 200, { 'x-pod': name }).end(name);
    });
    server.listen(0, ip);
    await once(server, 'listening');
    stack.defer(() => new Promise<void>((r) => server.close(() => r())));
    stack.defer(() => server.closeAllConnections());
    return (server.address() as net.AddressInfo).port;
  };
  const portA = await backend('a', '127.0.0.2');
  const portB = await backend('b', '127.0.0.3');
  const svc = (name: string) =>
    service(name, name === 'reviews' ? VIP : `10.96.7.${name === 'a' ? 8 : 9}`, {
      namespace: 'bk',
      ports: { 9080: 0 },
    });
  const [reviews, a, b] = [svc('reviews'), svc('a'), svc('b')];
  const pod = (name: string, ip: string, port: number) =>
    workload(name, ip, {
      namespace: 'bk',
      protocol: 'TCP',
      services: {
        [`bk/${reviews.hostname}`]: { 9080: port },
        [`bk/${name === 'a' ? a.hostname : b.hostname}`]: { 9080: port },
      },
    });
  const client = workload('client', '127.0.0.1', { namespace: 'bk' });
  const addresses = new Map<string, Held<AddressValue>>();
  for (const w of [client, pod('a', '127.0.0.2', portA), pod('b', '127.0.0.3', portB)])
    addresses.set(w.uid, { version: '1', value: { kind: 'workload', workload: w } });
  for (const s of [reviews, a, b]) addresses.set(s.hostname, { version: '1', value: { kind: 'service', service: s } });
  const spec = {
    parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
    rules: [
      {
        backendRefs: [
          { name: 'a', port: 9080, weight: 70 },
          { name: 'b', port: 9080, weight: 30 },
        ],
        retry: { attempts: 1, codes: [503] },
      },
    ],
  };
  const l7 = new Map<string, Held<L7Value>>([
    [
      'HTTPRoute/bk/reviews',
      {
        version: '1',
        value: {
          kind: 'HTTPRoute',
          input: { namespace: 'bk', name: 'reviews', creationTimestampMs: null, sequence: 0, spec },
        },
      },
    ],
  ]);
  const held: XdsHeldState = { addresses, authorizations: new Map(), l7 };
  const handler = sidecarL7({
    uid: client.uid,
    certificates: { getCertificate: () => Promise.reject(new Error('no HBONE upstream in this test')) },
  })({ logger: createLogger({ component: 'test', destination: { write: () => {} } }), hbonePort: 15008, network: '' });
  stack.defer(() => handler.close());
  handler.onConfig(held);
  assert.equal(handler.claims(client, { ip: VIP, port: 9080 }), true);

  // The "15001 listener": every accepted socket goes to the handler, as serveOutboundSocket does.
  const closing = new AbortController();
  const drain = new AbortController();
  const captured = net.createServer((socket) => {
    void handler.serve(socket, {
      source: client,
      src: { ip: '127.0.0.1', port: socket.remotePort ?? 0 },
      dst: { ip: VIP, port: 9080 },
      sockets: hostSocketFactory,
      drain: closing.signal,
      signal: drain.signal,
    });
  });
  captured.listen(0, '127.0.0.1');
  await once(captured, 'listening');
  stack.defer(() => new Promise<void>((r) => captured.close(() => r())));
  stack.defer(() => drain.abort());
  const origin = `http://127.0.0.1:${(captured.address() as net.AddressInfo).port}`;

  await t.test('HTTP/1.1: 70/30 over 200 requests, flaky first tries retried', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
    t.after(() => agent.destroy());
    const byPod = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
        http
          .get(`${origin}/`, { agent, headers: { 'x-request-id': `h1-${i}`, 'x-flaky': '1' } }, resolve)
          .on('error', reject),
      );
      res.resume();
      await once(res, 'end');
      assert.equal(res.statusCode, 200, `request ${i}`);
      const p = String(res.headers['x-pod']);
      byPod.set(p, (byPod.get(p) ?? 0) + 1);
    }
    assert.ok(Math.abs((byPod.get('a') ?? 0) / 2 - 70) <= 5, JSON.stringify([...byPod]));
    assert.equal(seen.get('h1-0'), 2, 'the first try got 503 and was retried');
  });

  await t.test('h2c (prior knowledge) on the same captured path', async () => {
    const session = http2.connect(origin);
    t.after(() => session.close());
    const byPod = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const stream = session.request({ ':path': '/', 'x-request-id': `h2-${i}` });
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      stream.resume();
      await once(stream, 'end');
      assert.equal(headers[':status'], 200);
      const p = String(headers['x-pod']);
      byPod.set(p, (byPod.get(p) ?? 0) + 1);
    }
    assert.ok(Math.abs((byPod.get('a') ?? 0) / 2 - 70) <= 5, JSON.stringify([...byPod]));
  });

  await t.test('draining: idle keep-alive connections close, then Connection: close; h2 gets GOAWAY', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    t.after(() => agent.destroy());
    const get = () =>
      new Promise<http.IncomingMessage>((resolve, reject) =>
        http.get(`${origin}/`, { agent }, resolve).on('error', reject),
      );
    const before = await get();
    const idle = before.socket;
    const pooled = once(agent, 'free');
    before.resume();
    await pooled; // now idle in the agent's keep-alive pool
    const session = http2.connect(origin);
    t.after(() => session.destroy());
    const first = session.request({ ':path': '/' });
    first.resume();
    await once(first, 'end'); // the session is being served
    const idleClosed = once(idle, 'close');
    const goaway = once(session, 'goaway');
    closing.abort();
    await idleClosed;
    await goaway;
    const res = await get(); // a new connection: the idle one was closed
    res.resume();
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.connection, 'close');
  });
});
