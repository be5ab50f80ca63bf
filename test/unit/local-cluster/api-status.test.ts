// `ferry status` on a cluster on its API: the rows made from the API's objects (pure).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { policyRows, routeLines, serviceRows, waypointRows } from '../../../src/local-cluster/api-status.ts';

test('Services: the ClusterIP is the VIP, headless has none, ports show their target', () => {
  const rows = serviceRows([
    {
      metadata: { namespace: 'demo', name: 'echo' },
      spec: { clusterIP: '10.96.0.10', ports: [{ port: 80, targetPort: 8080 }, { port: 9090 }] },
    },
    {
      metadata: { namespace: 'demo', name: 'db' },
      spec: { clusterIP: 'None', ports: [{ port: 5432, targetPort: 'pg' }] },
    },
    { metadata: { namespace: 'demo', name: 'new' }, spec: {} },
  ]);
  assert.deepEqual(rows, [
    { namespace: 'demo', name: 'echo', vip: '10.96.0.10', ports: ['80→8080', '9090→9090'] },
    { namespace: 'demo', name: 'db', vip: null, ports: ['5432→pg'] },
    { namespace: 'demo', name: 'new', vip: null, ports: [] },
  ]);
});

test('AuthorizationPolicies: scope from targetRefs, selector, root namespace; ALLOW when no action', () => {
  const cases: [Record<string, unknown>, string, string, string][] = [
    [{ selector: { matchLabels: { app: 'echo' } }, action: 'DENY' }, 'demo', 'DENY', 'WorkloadSelector'],
    [{ targetRefs: [{ kind: 'Service', name: 'echo' }] }, 'demo', 'ALLOW', 'Waypoint'],
    [{ targetRef: { kind: 'Gateway', name: 'waypoint' } }, 'demo', 'ALLOW', 'Waypoint'],
    [{}, 'demo', 'ALLOW', 'Namespace'],
    [{ action: 'DENY' }, 'istio-system', 'DENY', 'Global'],
    [{ action: 'AUDIT' }, 'demo', 'AUDIT', 'Namespace'],
  ];
  for (const [spec, namespace, action, scope] of cases) {
    const [row] = policyRows([{ metadata: { namespace, name: 'p' }, spec }]);
    assert.deepEqual(row, { namespace, name: 'p', action, scope }, JSON.stringify(spec));
  }
  assert.equal(policyRows([{ metadata: { namespace: 'root', name: 'p' }, spec: {} }], 'root')[0]?.scope, 'Global');
});

test('waypoints: only the ferry-waypoint class; Programmed and the address from status', () => {
  const rows = waypointRows([
    {
      metadata: { namespace: 'shop', name: 'waypoint', labels: { 'istio.io/waypoint-for': 'all' } },
      spec: { gatewayClassName: 'ferry-waypoint' },
      status: {
        conditions: [{ type: 'Programmed', status: 'True' }],
        addresses: [{ type: 'IPAddress', value: '10.96.0.20' }],
      },
    },
    { metadata: { namespace: 'shop', name: 'pending' }, spec: { gatewayClassName: 'ferry-waypoint' } },
    { metadata: { namespace: 'shop', name: 'ingress' }, spec: { gatewayClassName: 'nginx' } },
  ]);
  assert.deepEqual(rows, [
    { namespace: 'shop', name: 'waypoint', for: 'all', programmed: true, address: '10.96.0.20' },
    { namespace: 'shop', name: 'pending', for: 'service', programmed: false, address: null },
  ]);
});

test("routes: Ferry's parents only, one line each; none of Ferry's says not attached", () => {
  const lines = routeLines('HTTPRoute', [
    {
      metadata: { namespace: 'shop', name: 'echo' },
      status: {
        parents: [
          {
            parentRef: { group: '', kind: 'Service', name: 'echo', port: 80 },
            controllerName: 'ferry.dev/waypoint-controller',
            conditions: [
              { type: 'Accepted', status: 'True', reason: 'Accepted', message: '' },
              { type: 'ResolvedRefs', status: 'False', reason: 'BackendNotFound', message: 'echo-v3 not found' },
            ],
          },
          { parentRef: { name: 'other' }, controllerName: 'example.com/other', conditions: [] },
        ],
      },
    },
    { metadata: { namespace: 'shop', name: 'fresh' } },
  ]);
  assert.deepEqual(lines, [
    'HTTPRoute shop/echo  parent Service echo:80  Accepted=True  ResolvedRefs=False (BackendNotFound: echo-v3 not found)',
    'HTTPRoute shop/fresh  no parent Ferry serves (not attached)',
  ]);
});
