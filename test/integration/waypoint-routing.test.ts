// The waypoint on loopback, end to end over real HBONE: routing, splits, filters, errors and retries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Service, Workload } from '../../src/mesh/types.ts';
import { meshConfig, service, waypointByHostname, workload } from '../helpers/mesh-builders.ts';
import { startWaypointHarness } from '../helpers/waypoint-harness.ts';

const WAYPOINT = waypointByHostname('default', 'waypoint.default.svc.cluster.local');
const PODS = [
  { name: 'echo-v1', ip: '127.0.0.21' },
  { name: 'echo-v2', ip: '127.0.0.22' },
];

function backendWorkload(name: string, ip: string, services: string[]): Workload {
  return workload(name, ip, {
    services: Object.fromEntries(services.map((s) => [`default/${s}.default.svc.cluster.local`, { 80: 8080 }])),
  });
}

function mesh(): { workloads: Workload[]; services: Service[] } {
  const svc = (name: string, vip: string, waypoint = true) => ({
    ...service(name, vip, { ports: { 80: 8080 } }),
    waypoint: waypoint ? WAYPOINT : null,
  });
  return {
    workloads: [
      backendWorkload('echo-v1', '127.0.0.21', ['echo', 'echo-v1']),
      backendWorkload('echo-v2', '127.0.0.22', ['echo', 'echo-v2']),
    ],
    services: [
      svc('echo', '10.96.0.10'),
      svc('echo-v1', '10.96.0.11'),
      svc('echo-v2', '10.96.0.12'),
      svc('other', '10.96.0.13', false),
    ],
  };
}

const route = (
  name: string,
  rules: unknown[],
  parent: Record<string, unknown> = { group: '', kind: 'Service', name: 'echo', port: 80 },
) => ({
  metadata: { name, namespace: 'default' },
  spec: { parentRefs: [parent], rules },
});
const ref = (name: string, weight?: number) => ({ name, port: 80, ...(weight === undefined ? {} : { weight }) });

test('waypoint: pass-through, 404, splits, filters, redirects, 500s and L7 deny', async (t) => {
  const h = await startWaypointHarness(t, PODS, () => ({
    mesh: meshConfig(mesh()),
    httpRoutes: [
      route('split', [
        {
          matches: [{ path: { type: 'PathPrefix', value: '/split' } }],
          backendRefs: [ref('echo-v1', 70), ref('echo-v2', 30)],
        },
        {
          name: 'zero',
          matches: [{ path: { type: 'PathPrefix', value: '/zero' } }],
          backendRefs: [ref('echo-v1', 0), ref('echo-v2', 1)],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
          filters: [
            {
              type: 'RequestHeaderModifier',
              requestHeaderModifier: { add: [{ name: 'x-added', value: 'yes' }], remove: ['x-drop'] },
            },
            { type: 'ResponseHeaderModifier', responseHeaderModifier: { set: [{ name: 'x-resp', value: 'set' }] } },
            { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/v2' } } },
          ],
          backendRefs: [ref('echo-v2')],
        },
        {
          matches: [{ path: { type: 'Exact', value: '/old' } }],
          filters: [
            {
              type: 'RequestRedirect',
              requestRedirect: { path: { type: 'ReplaceFullPath', replaceFullPath: '/new' }, statusCode: 301 },
            },
          ],
        },
        { matches: [{ path: { type: 'Exact', value: '/empty' } }] },
        { matches: [{ path: { type: 'Exact', value: '/missing' } }], backendRefs: [ref('nope')] },
        { matches: [{ headers: [{ name: 'x-version', value: 'two' }] }], backendRefs: [ref('echo-v2')] },
        {
          name: 'mirrored',
          matches: [{ path: { type: 'PathPrefix', value: '/mirror' } }],
          filters: [{ type: 'RequestMirror', requestMirror: { backendRef: ref('echo-v2'), percent: 100 } }],
          backendRefs: [ref('echo-v1')],
        },
        {
          matches: [{ path: { type: 'PathPrefix', value: '/cors' } }],
          filters: [
            {
              type: 'CORS',
              cors: {
                allowOrigins: ['https://*.example.com'],
                allowMethods: ['GET', 'POST'],
                allowHeaders: ['x-token'],
                maxAge: 60,
              },
            },
          ],
          backendRefs: [ref('echo-v1')],
        },
      ]),
    ],
    authorizationPolicies: [
      {
        metadata: { name: 'no-delete', namespace: 'default' },
        spec: {
          targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' }],
          action: 'DENY',
          rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }],
        },
      },
    ],
  }));
  await t.test('no route attached: pass-through to the Service', async () => {
    const r = await h.request('10.96.0.11', 80, { path: '/anything' });
    assert.equal(r.status, 200);
    assert.equal(r.echo?.pod, 'echo-v1');
  });
  await t.test('routes attached but none matches: 404', async () => {
    const r = await h.request('10.96.0.10', 80, { path: '/nothing' });
    assert.equal(r.status, 404);
  });
  await t.test('70/30 split over 300 requests, weight 0 gets nothing', async () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const r = await h.request('10.96.0.10', 80, { path: '/split' });
      assert.equal(r.status, 200);
      counts.set(r.echo?.pod ?? '?', (counts.get(r.echo?.pod ?? '?') ?? 0) + 1);
    }
    const share = (counts.get('echo-v1') ?? 0) / 300;
    assert.ok(share > 0.6 && share < 0.8, `echo-v1 share ${share}`);
    for (let i = 0; i < 20; i++)
      assert.equal((await h.request('10.96.0.10', 80, { path: '/zero' })).echo?.pod, 'echo-v2');
  });
  await t.test('filters: header add/remove, rewrite as seen by the backend, response header', async () => {
    const r = await h.request('10.96.0.10', 80, {
      path: '/api/users?x=1',
      headers: { 'x-drop': 'gone', 'x-added': 'first' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.echo?.path, '/v2/users');
    assert.equal(r.echo?.headers['x-added'], 'first,yes');
    assert.equal(r.echo?.headers['x-drop'], undefined);
    assert.equal(r.headers['x-resp'], 'set');
    assert.match(String(r.echo?.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
  await t.test('redirect answers with Location, no backend involved', async () => {
    const r = await h.request('10.96.0.10', 80, { path: '/old?q=1' });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'http://10.96.0.10/new?q=1');
  });
  await t.test('no backendRefs → 500; unresolved backend → 500', async () => {
    assert.equal((await h.request('10.96.0.10', 80, { path: '/empty' })).status, 500);
    assert.equal((await h.request('10.96.0.10', 80, { path: '/missing' })).status, 500);
  });
  await t.test('header match routes to v2', async () => {
    assert.equal(
      (await h.request('10.96.0.10', 80, { path: '/x', headers: { 'x-version': 'two' } })).echo?.pod,
      'echo-v2',
    );
  });
  await t.test(
    'RequestMirror: the mirror backend receives a copy (Host suffixed -shadow), the client the primary',
    async () => {
      for (let i = 0; i < 5; i++) {
        const r = await h.request('10.96.0.10', 80, { path: `/mirror/${i}`, headers: { 'x-request-id': `m${i}` } });
        assert.equal(r.echo?.pod, 'echo-v1');
      }
      const copies = () => (h.seen.get('echo-v2') ?? []).filter((l) => String(l.requestId).startsWith('m'));
      while (copies().length < 5) await new Promise((r) => setTimeout(r, 20));
      assert.ok(
        copies().every((l) => l.host === '10.96.0.10-shadow'),
        JSON.stringify(copies()),
      );
    },
  );
  await t.test('CORS: preflight answered by the waypoint, actual responses carry the allow-origin', async () => {
    const pre = await h.request('10.96.0.10', 80, {
      method: 'OPTIONS',
      path: '/cors',
      headers: { origin: 'https://shop.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://shop.example.com');
    assert.equal(pre.headers['access-control-max-age'], '60');
    assert.equal(pre.echo, null, 'the backend never sees a preflight');
    const denied = await h.request('10.96.0.10', 80, {
      method: 'OPTIONS',
      path: '/cors',
      headers: { origin: 'https://evil.test', 'access-control-request-method': 'POST' },
    });
    assert.equal(denied.status, 403);
    const actual = await h.request('10.96.0.10', 80, { path: '/cors', headers: { origin: 'https://a.example.com' } });
    assert.equal(actual.headers['access-control-allow-origin'], 'https://a.example.com');
  });
  await t.test('L7 DENY → 403 and an access-log line naming the policy', async () => {
    const r = await h.request('10.96.0.11', 80, { method: 'DELETE', path: '/a' });
    assert.equal(r.status, 403);
    const line = await h.logs.waitFor((l) => l.msg === 'request' && l.response_code === 403 && l.method === 'DELETE');
    assert.equal(line.policy, 'default/no-delete');
  });
  await t.test('a service this waypoint does not serve is refused at CONNECT', async () => {
    await assert.rejects(h.request('10.96.0.13', 80));
  });
});
