// TCPRoute and consumer routes through a real waypoint (issue 13). TCPRoute: 1,000 connections to a
// non-HTTP Service split by weight, one backend per connection, bytes echoed with half-close kept.
// Consumer routes: a route in namespace `consumer` whose parent is a Service in `default` changes what
// clients of `consumer` reach, and only theirs; everyone else keeps the producer route.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { startWaypointHarness } from '../helpers/waypoint-harness.ts';

const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');
const svcKey = (name: string) => `default/${name}.default.svc.cluster.local`;

/** A TCP echo that first says which pod it is (one line), then echoes; ends after the client's FIN. */
async function namedTcpEcho(host: string, pod: string): Promise<{ port: number; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`${pod}\n`);
    socket.pipe(socket);
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

/** Sends `text`, half-closes, reads everything until the waypoint ends the tunnel. */
async function roundTrip(tunnel: Duplex, text: string): Promise<string> {
  const chunks: Buffer[] = [];
  tunnel.on('data', (c: Buffer) => chunks.push(c));
  tunnel.end(text);
  await once(tunnel, 'end');
  tunnel.destroy();
  return Buffer.concat(chunks).toString();
}

test('TCPRoute: 1,000 connections split 70/30 by weight, bytes echoed', async (t) => {
  const pods = ['tcp-a', 'tcp-b'].map((name, i) => ({
    name,
    ip: `127.0.0.7${i + 1}`,
    backend: (host: string) => namedTcpEcho(host, name),
  }));
  let tcpRoutes: unknown[] = [
    {
      metadata: { name: 'split', namespace: 'default' },
      spec: {
        parentRefs: [{ group: '', kind: 'Service', name: 'db', port: 9000 }],
        rules: [
          {
            backendRefs: [
              { name: 'db-v1', port: 9000, weight: 70 },
              { name: 'db-v2', port: 9000, weight: 30 },
            ],
          },
        ],
      },
    },
  ];
  const mesh = () =>
    meshConfig({
      workloads: [
        workload('tcp-a', '127.0.0.71', {
          services: { [svcKey('db')]: { 9000: 9000 }, [svcKey('db-v1')]: { 9000: 9000 } },
        }),
        workload('tcp-b', '127.0.0.72', { services: { [svcKey('db-v2')]: { 9000: 9000 } } }),
      ],
      services: [
        // No appProtocol: without the TCPRoute this port would be sniffed as HTTP.
        { ...service('db', '10.96.4.10', { ports: { 9000: 9000 } }), waypoint: WAYPOINT },
        service('db-v1', '10.96.4.11', { ports: { 9000: 9000 } }),
        service('db-v2', '10.96.4.12', { ports: { 9000: 9000 } }),
      ],
    });
  const h = await startWaypointHarness(t, pods, () => ({ mesh: mesh(), tcpRoutes }));

  await t.test('1,000 connections: each gets one backend, 70/30 within ±5 points', async () => {
    const byPod: Record<string, number> = {};
    for (let i = 0; i < 1000; i += 50) {
      const replies = await Promise.all(
        Array.from({ length: 50 }, async (_, j) => roundTrip(await h.openTunnel('10.96.4.10', 9000), `hello ${i + j}`)),
      );
      replies.forEach((reply, j) => {
        const [pod, echoed] = reply.split('\n');
        assert.equal(echoed, `hello ${i + j}`);
        byPod[pod ?? ''] = (byPod[pod ?? ''] ?? 0) + 1;
      });
    }
    t.diagnostic(`70/30 over 1,000 connections: ${JSON.stringify(byPod)}`);
    assert.equal((byPod['tcp-a'] ?? 0) + (byPod['tcp-b'] ?? 0), 1000);
    assert.ok(Math.abs((byPod['tcp-a'] ?? 0) - 700) <= 50, JSON.stringify(byPod));
  });

  await t.test('a server-first protocol works: the route decides before any client byte', async () => {
    const tunnel = await h.openTunnel('10.96.4.10', 9000);
    const [first] = (await once(tunnel, 'data')) as [Buffer];
    assert.match(first.toString(), /^tcp-[ab]\n/);
    tunnel.destroy();
  });

  await t.test('an unresolved backend: its connections are closed; status says ResolvedRefs=False', async () => {
    tcpRoutes = [
      {
        metadata: { name: 'broken', namespace: 'default' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'db', port: 9000 }],
          rules: [{ backendRefs: [{ name: 'db-missing', port: 9000 }] }],
        },
      },
    ];
    await h.reconfigure({ mesh: mesh(), tcpRoutes });
    const reply = await roundTrip(await h.openTunnel('10.96.4.10', 9000), 'anyone?').catch(() => '');
    assert.equal(reply, '');
    const status = h.waypoint.state().statuses.find((s) => s.key === 'default/broken');
    assert.equal(status?.kind, 'TCPRoute');
    const rr = status?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs');
    assert.equal(rr?.reason, 'BackendNotFound');
  });
});

test('consumer routes: only the consumer namespace sees them; the producer route applies to everyone else', async (t) => {
  const pods = [
    { name: 'echo-a', ip: '127.0.0.81' },
    { name: 'echo-b', ip: '127.0.0.82' },
  ];
  const h = await startWaypointHarness(t, pods, () => ({
    mesh: meshConfig({
      workloads: [
        workload('echo-a', '127.0.0.81', {
          services: { [svcKey('shop')]: { 80: 8080 }, [svcKey('shop-v1')]: { 80: 8080 } },
        }),
        workload('echo-b', '127.0.0.82', { services: { [svcKey('shop-v2')]: { 80: 8080 } } }),
      ],
      services: [
        { ...service('shop', '10.96.5.10', { ports: { 80: 8080 } }), waypoint: WAYPOINT },
        service('shop-v1', '10.96.5.11', { ports: { 80: 8080 } }),
        service('shop-v2', '10.96.5.12', { ports: { 80: 8080 } }),
      ],
    }),
    httpRoutes: [
      {
        metadata: { name: 'producer', namespace: 'default' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'shop', port: 80 }],
          rules: [{ backendRefs: [{ name: 'shop-v1', port: 80 }] }],
        },
      },
      {
        metadata: { name: 'canary-for-us', namespace: 'consumer' },
        spec: {
          parentRefs: [{ group: '', kind: 'Service', name: 'shop', namespace: 'default', port: 80 }],
          rules: [
            {
              filters: [
                {
                  type: 'RequestHeaderModifier',
                  requestHeaderModifier: { set: [{ name: 'x-consumer', value: 'yes' }] },
                },
              ],
              backendRefs: [{ name: 'shop-v2', namespace: 'default', port: 80 }],
            },
          ],
        },
      },
    ],
  }));
  const cases: [string, string, string, string | undefined][] = [
    ['from the consumer namespace → the consumer route', 'consumer', 'echo-b', 'yes'],
    ['from the producer namespace → the producer route', 'default', 'echo-a', undefined],
    ['from a third namespace → the producer route', 'elsewhere', 'echo-a', undefined],
  ];
  for (const [what, ns, pod, header] of cases) {
    await t.test(what, async () => {
      for (let i = 0; i < 5; i++) {
        const r = await h.request('10.96.5.10', 80, { path: '/', sourceNamespace: ns });
        assert.equal(r.status, 200);
        assert.equal(r.echo?.pod, pod);
        assert.equal(r.echo?.headers['x-consumer'], header);
      }
    });
  }
  await t.test('status: the consumer route is Accepted and says whose requests it applies to', () => {
    const status = h.waypoint.state().statuses.find((s) => s.key === 'consumer/canary-for-us');
    const accepted = status?.parents[0]?.conditions.find((c) => c.type === 'Accepted');
    assert.equal(accepted?.status, 'True');
    assert.match(accepted?.message ?? '', /consumer route: applies to requests from namespace consumer only/);
  });
});
