// GRPCRoute through a real waypoint (issue 13), with a real gRPC client and server (@grpc/grpc-js) on both
// sides of HBONE: the client's h2c connection enters an HBONE tunnel to the waypoint (as a ztunnel would
// send it), the waypoint routes each call and sends it over HBONE to gRPC echo pods. Weighted splits,
// header modifiers as the backend sees them, method matching, gRPC statuses, and every streaming shape.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import {
  ECHO_SERVICE,
  type EchoReply,
  type EchoRequest,
  echoClient,
  startGrpcEcho,
  unaryCall,
} from '../../src/cli/testapp/grpc-echo.ts';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { startWaypointHarness, type WaypointHarness } from '../helpers/waypoint-harness.ts';

const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');
const VIP = '10.96.3.10';
const PORT = 50051;
const grpcPort = [{ servicePort: PORT, targetPort: PORT, appProtocol: 'grpc' as const }];

function mesh() {
  const svc = (name: string) => `default/${name}.default.svc.cluster.local`;
  return meshConfig({
    workloads: [
      workload('grpc-a', '127.0.0.61', {
        services: { [svc('grpc')]: { [PORT]: PORT }, [svc('grpc-v1')]: { [PORT]: PORT } },
      }),
      workload('grpc-b', '127.0.0.62', { services: { [svc('grpc-v2')]: { [PORT]: PORT } } }),
    ],
    services: [
      { ...service('grpc', VIP), ports: grpcPort, waypoint: WAYPOINT },
      { ...service('grpc-v1', '10.96.3.11'), ports: grpcPort },
      { ...service('grpc-v2', '10.96.3.12'), ports: grpcPort },
    ],
  });
}

const parent = { group: '', kind: 'Service', name: 'grpc', port: PORT };
const ref = (name: string, weight?: number, filters?: unknown[]) => ({
  name,
  port: PORT,
  ...(weight === undefined ? {} : { weight }),
  ...(filters === undefined ? {} : { filters }),
});
const grpcRoute = (name: string, rules: unknown[]) => ({
  metadata: { name, namespace: 'default' },
  spec: { parentRefs: [parent], rules },
});

/** A local port whose connections each become an HBONE tunnel to VIP:PORT through the waypoint. */
async function tunnelPort(h: WaypointHarness, t: import('node:test').TestContext): Promise<number> {
  const server = net.createServer(async (socket) => {
    socket.on('error', () => socket.destroy());
    try {
      const tunnel = await h.openTunnel(VIP, PORT);
      tunnel.on('error', () => socket.destroy());
      socket.on('close', () => tunnel.destroy());
      tunnel.on('close', () => socket.destroy());
      socket.pipe(tunnel).pipe(socket);
    } catch {
      socket.destroy();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

/** Unary calls each pod served (the mirror's copies included). */
const unaryCalls = new Map<string, number>();
const countCall = (pod: string) => unaryCalls.set(pod, (unaryCalls.get(pod) ?? 0) + 1);

const pods = [
  {
    name: 'grpc-a',
    ip: '127.0.0.61',
    backend: async (host: string) => {
      const s = await startGrpcEcho({ port: 0, host, podName: 'grpc-a', log: () => countCall('grpc-a') });
      return { port: s.port, close: () => void s[Symbol.asyncDispose]() };
    },
  },
  {
    name: 'grpc-b',
    ip: '127.0.0.62',
    backend: async (host: string) => {
      const s = await startGrpcEcho({ port: 0, host, podName: 'grpc-b', log: () => countCall('grpc-b') });
      return { port: s.port, close: () => void s[Symbol.asyncDispose]() };
    },
  },
];

/** One unary call that also returns the response metadata (headers) the client got. */
function unaryWithHeaders(client: grpc.Client, path: string, req: EchoRequest, md = new grpc.Metadata()) {
  return new Promise<{ reply: EchoReply | null; code: number; headers: Record<string, unknown> }>((resolve) => {
    let headers: Record<string, unknown> = {};
    const call = client.makeUnaryRequest<EchoRequest, EchoReply>(
      path,
      (v) => Buffer.from(JSON.stringify(v)),
      (b) => JSON.parse(b.toString()),
      req,
      md,
      { deadline: Date.now() + 10_000 },
      (err, reply) => resolve({ reply: reply ?? null, code: err?.code ?? 0, headers }),
    );
    call.on('metadata', (m: grpc.Metadata) => {
      headers = m.getMap();
    });
  });
}

test('GRPCRoute through the waypoint with grpc-js on both ends', async (t) => {
  let routes: unknown[] = [grpcRoute('split', [{ backendRefs: [ref('grpc-v1', 70), ref('grpc-v2', 30)] }])];
  const h = await startWaypointHarness(t, pods, () => ({ mesh: mesh(), grpcRoutes: routes }));
  const reconfigure = async (next: unknown[]) => {
    routes = next;
    await h.reconfigure({ mesh: mesh(), grpcRoutes: routes });
  };
  const port = await tunnelPort(h, t);
  const client = echoClient(`127.0.0.1:${port}`);
  t.after(() => client.close());

  await t.test('70/30 split over 500 unary calls lands within ±5 points', async () => {
    const byPod: Record<string, number> = {};
    for (let i = 0; i < 500; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, () => unaryCall(client, { message: 'x' })));
      for (const r of batch) {
        assert.equal(r.code, 0, r.details);
        const pod = r.reply?.pod ?? 'none';
        byPod[pod] = (byPod[pod] ?? 0) + 1;
      }
    }
    t.diagnostic(`70/30 over 500 calls: ${JSON.stringify(byPod)}`);
    assert.ok(Math.abs((byPod['grpc-a'] ?? 0) - 350) <= 25, JSON.stringify(byPod));
    assert.equal((byPod['grpc-a'] ?? 0) + (byPod['grpc-b'] ?? 0), 500);
  });

  await t.test('weight 0 gets nothing; an unresolved backend share answers UNAVAILABLE', async () => {
    await reconfigure([
      grpcRoute('zero', [{ backendRefs: [ref('grpc-v1', 1), ref('grpc-missing', 1), ref('grpc-v2', 0)] }]),
    ]);
    const codes: Record<string, number> = {};
    const byPod: Record<string, number> = {};
    const results = await Promise.all(Array.from({ length: 100 }, () => unaryCall(client, {})));
    for (const r of results) {
      codes[r.code] = (codes[r.code] ?? 0) + 1;
      if (r.reply !== null) byPod[r.reply.pod] = (byPod[r.reply.pod] ?? 0) + 1;
    }
    assert.equal(byPod['grpc-b'], undefined, 'weight 0 backend got traffic');
    assert.ok(Math.abs((codes[grpc.status.UNAVAILABLE] ?? 0) - 50) <= 5, JSON.stringify(codes));
    assert.equal((codes[grpc.status.OK] ?? 0) + (codes[grpc.status.UNAVAILABLE] ?? 0), 100);
  });

  await t.test('header modifiers as the backend and the client see them (set, add, remove, at once)', async () => {
    await reconfigure([
      grpcRoute('headers', [
        {
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: {
                set: [
                  { name: 'x-set', value: 'route' },
                  { name: 'x-tenant', value: 'overwritten' },
                ],
                add: [
                  { name: 'x-add', value: 'added' },
                  { name: 'x-multi', value: 'b' },
                ],
                remove: ['x-drop', 'x-drop-too'],
              },
            },
            {
              type: 'ResponseHeaderModifier',
              responseHeaderModifier: { set: [{ name: 'x-resp', value: 'set-by-route' }] },
            },
          ],
          backendRefs: [
            ref('grpc-v1', 1, [
              { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-backend', value: 'v1' }] } },
            ]),
          ],
        },
      ]),
    ]);
    const md = new grpc.Metadata();
    md.add('x-tenant', 'client');
    md.add('x-multi', 'a');
    md.add('x-drop', 'gone');
    md.add('x-drop-too', 'gone');
    md.add('x-keep', 'kept');
    const r = await unaryWithHeaders(client, ECHO_SERVICE.Unary.path, {}, md);
    assert.equal(r.code, 0);
    const seen = r.reply?.metadata ?? {};
    assert.equal(seen['x-set'], 'route');
    assert.equal(seen['x-tenant'], 'overwritten');
    assert.equal(seen['x-add'], 'added');
    assert.equal(seen['x-multi'], 'a,b');
    assert.equal(seen['x-drop'], undefined);
    assert.equal(seen['x-drop-too'], undefined);
    assert.equal(seen['x-keep'], 'kept');
    assert.equal(seen['x-backend'], 'v1', 'backend-level filter');
    assert.deepEqual(r.headers['x-resp'], 'set-by-route');
  });

  await t.test('method matching: Exact, service-only and RegularExpression; no match → UNIMPLEMENTED', async () => {
    await reconfigure([
      grpcRoute('methods', [
        { matches: [{ method: { service: 'ferry.test.Echo', method: 'Unary' } }], backendRefs: [ref('grpc-v1')] },
        {
          matches: [{ method: { type: 'RegularExpression', method: '(Server|Client)Stream' } }],
          backendRefs: [ref('grpc-v2')],
        },
      ]),
    ]);
    assert.equal((await unaryWithHeaders(client, '/ferry.test.Echo/Unary', {})).reply?.pod, 'grpc-a');
    const stream = client.makeServerStreamRequest<EchoRequest, EchoReply>(
      ECHO_SERVICE.ServerStream.path,
      ECHO_SERVICE.ServerStream.requestSerialize,
      ECHO_SERVICE.ServerStream.responseDeserialize,
      { count: 1 },
    );
    const [first] = (await once(stream, 'data')) as [EchoReply];
    assert.equal(first.pod, 'grpc-b');
    stream.on('error', () => {}); // CANCELLED, as asked
    stream.cancel();
    const bidi = await unaryWithHeaders(client, '/ferry.test.Echo/Bidi', {});
    assert.equal(bidi.code, grpc.status.UNIMPLEMENTED);
    const other = await unaryWithHeaders(client, '/other.Service/Unary', {});
    assert.equal(other.code, grpc.status.UNIMPLEMENTED);
  });

  await t.test('status codes: the backend’s error status (Trailers-Only) reaches the client', async () => {
    await reconfigure([grpcRoute('status', [{ backendRefs: [ref('grpc-v1')] }])]);
    for (const code of [grpc.status.NOT_FOUND, grpc.status.PERMISSION_DENIED, grpc.status.RESOURCE_EXHAUSTED]) {
      const r = await unaryCall(client, { status: code });
      assert.equal(r.code, code);
      assert.match(r.details, /failed as asked/);
    }
    assert.equal((await unaryCall(client, {})).code, grpc.status.OK);
  });

  await t.test('server, client and bidi streaming through the waypoint (no buffering)', async () => {
    const server = client.makeServerStreamRequest<EchoRequest, EchoReply>(
      ECHO_SERVICE.ServerStream.path,
      ECHO_SERVICE.ServerStream.requestSerialize,
      ECHO_SERVICE.ServerStream.responseDeserialize,
      { count: 200, message: 'many' },
    );
    const got: number[] = [];
    for await (const m of server as AsyncIterable<EchoReply>) got.push(m.count);
    assert.deepEqual(
      got,
      Array.from({ length: 200 }, (_, i) => i),
    );

    const clientStream = await new Promise<EchoReply | null>((resolve, reject) => {
      const call = client.makeClientStreamRequest<EchoRequest, EchoReply>(
        ECHO_SERVICE.ClientStream.path,
        ECHO_SERVICE.ClientStream.requestSerialize,
        ECHO_SERVICE.ClientStream.responseDeserialize,
        (err, reply) => (err === null ? resolve(reply ?? null) : reject(err)),
      );
      for (let i = 0; i < 20; i++) call.write({ message: String(i) });
      call.end();
    });
    assert.equal(clientStream?.count, 20);
    assert.equal(clientStream?.message, Array.from({ length: 20 }, (_, i) => i).join(','));

    // Interactive: each message is sent only after the previous reply came back, which a waypoint that
    // buffered the request body until its end could never answer.
    const bidi = client.makeBidiStreamRequest<EchoRequest, EchoReply>(
      ECHO_SERVICE.Bidi.path,
      ECHO_SERVICE.Bidi.requestSerialize,
      ECHO_SERVICE.Bidi.responseDeserialize,
    );
    for (let i = 0; i < 10; i++) {
      bidi.write({ message: `ping-${i}` });
      const [reply] = (await once(bidi, 'data')) as [EchoReply];
      assert.equal(reply.message, `ping-${i}`);
      assert.equal(reply.count, i);
    }
    bidi.end();
    await once(bidi, 'status');
  });

  await t.test('RequestMirror sends a copy of unary calls to the mirror backend', async () => {
    await reconfigure([
      grpcRoute('mirror', [
        {
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: ref('grpc-v2') } }],
          backendRefs: [ref('grpc-v1')],
        },
      ]),
    ]);
    const before = unaryCalls.get('grpc-b') ?? 0;
    const r = await unaryCall(client, { message: 'mirrored' });
    assert.equal(r.reply?.pod, 'grpc-a');
    // The mirror is fire-and-forget: wait (bounded) for its copy to reach grpc-b.
    for (let i = 0; i < 100 && (unaryCalls.get('grpc-b') ?? 0) === before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(unaryCalls.get('grpc-b'), before + 1);
  });

  await t.test('status: the route is Accepted on its parent', async () => {
    const status = h.waypoint.state().statuses.find((s) => s.key === 'default/mirror');
    assert.equal(status?.kind, 'GRPCRoute');
    assert.equal(status?.parents[0]?.conditions.find((c) => c.type === 'Accepted')?.status, 'True');
  });
});
