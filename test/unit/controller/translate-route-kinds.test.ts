// GRPCRoute, TCPRoute and consumer routes in the controller (issue 13): the manifests are read (kinds and
// apiVersions), become L7 resources for waypoints, and get statuses with the same conflict rules the
// waypoint applies; ReferenceGrants name the route kind they allow.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ns, stateOf, translateYaml } from '../../helpers/controller-fixtures.ts';

const BASE = `${ns('shop', '{istio.io/dataplane-mode: ambient, istio.io/use-waypoint: wp}')}${ns('client', '{istio.io/dataplane-mode: ambient}')}apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {selector: {app: api}, ports: [{name: grpc, port: 50051, appProtocol: grpc}, {name: db, port: 9000}]}
---
apiVersion: v1
kind: Service
metadata: {name: api-v2, namespace: shop}
spec: {selector: {app: api-v2}, ports: [{name: grpc, port: 50051}, {name: db, port: 9000}]}
---
`;

const route = (kind: string, apiVersion: string, name: string, namespace: string, body: string) =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: ${name}, namespace: ${namespace}, creationTimestamp: "2026-01-01T00:00:0${name.length % 10}Z"}\nspec:\n${body}\n---\n`;

const accepted = (r: ReturnType<typeof translateYaml>, key: string, kind: string) =>
  r.routeStatus
    .find((s) => s.key === key && (s.kind ?? 'HTTPRoute') === kind)
    ?.parents[0]?.conditions.find((c) => c.type === 'Accepted');

describe('route kinds the controller reads', () => {
  const cases: [string, string, string, boolean][] = [
    ['GRPCRoute v1', 'GRPCRoute', 'gateway.networking.k8s.io/v1', true],
    ['GRPCRoute v1alpha2 (removed upstream)', 'GRPCRoute', 'gateway.networking.k8s.io/v1alpha2', false],
    ['TCPRoute v1alpha2 (experimental)', 'TCPRoute', 'gateway.networking.k8s.io/v1alpha2', true],
    ['TCPRoute v1', 'TCPRoute', 'gateway.networking.k8s.io/v1', true],
    ['TLSRoute (not supported)', 'TLSRoute', 'gateway.networking.k8s.io/v1alpha2', false],
    ['UDPRoute (not supported)', 'UDPRoute', 'gateway.networking.k8s.io/v1alpha2', false],
  ];
  for (const [what, kind, apiVersion, ok] of cases) {
    it(`${what} → ${ok ? 'read' : 'refused with FERRY_MANIFEST_UNKNOWN_KIND'}`, () => {
      const { diagnostics } = stateOf(
        route(kind, apiVersion, 'r', 'shop', '  parentRefs: [{kind: Service, group: "", name: api}]'),
      );
      assert.equal(
        diagnostics.some((d) => d.code === 'FERRY_MANIFEST_UNKNOWN_KIND'),
        !ok,
        JSON.stringify(diagnostics),
      );
    });
  }
});

describe('translation: L7 resources and statuses', () => {
  const grpc = route(
    'GRPCRoute',
    'gateway.networking.k8s.io/v1',
    'g',
    'shop',
    `  parentRefs: [{kind: Service, group: "", name: api, port: 50051}]
  rules: [{matches: [{method: {service: pkg.Api}}], backendRefs: [{name: api-v2, port: 50051}]}]`,
  );
  const httpSame = route(
    'HTTPRoute',
    'gateway.networking.k8s.io/v1',
    'http',
    'shop',
    `  parentRefs: [{kind: Service, group: "", name: api, port: 50051}]
  rules: [{backendRefs: [{name: api-v2, port: 50051}]}]`,
  );
  const tcp = route(
    'TCPRoute',
    'gateway.networking.k8s.io/v1alpha2',
    'tcp',
    'shop',
    `  parentRefs: [{kind: Service, group: "", name: api, port: 9000}]
  rules: [{backendRefs: [{name: api, port: 9000, weight: 70}, {name: api-v2, port: 9000, weight: 30}]}]`,
  );
  const consumer = route(
    'HTTPRoute',
    'gateway.networking.k8s.io/v1',
    'mine',
    'client',
    `  parentRefs: [{kind: Service, group: "", name: api, namespace: shop, port: 9000}]
  rules: [{backendRefs: [{name: api-v2, namespace: shop, port: 9000}]}]`,
  );
  const r = translateYaml(BASE + grpc + httpSame + tcp + consumer);
  it('every route kind becomes an L7 resource named <Kind>/<ns>/<name>', () => {
    const names = r.l7.map((e) => e.name);
    for (const n of ['GRPCRoute/shop/g', 'HTTPRoute/shop/http', 'TCPRoute/shop/tcp', 'HTTPRoute/client/mine']) {
      assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    }
  });
  it('GRPCRoute Accepted; the HTTPRoute on the same Service port Conflicted', () => {
    assert.equal(accepted(r, 'shop/g', 'GRPCRoute')?.status, 'True');
    assert.equal(accepted(r, 'shop/http', 'HTTPRoute')?.reason, 'Conflicted');
  });
  it('TCPRoute Accepted on its port; the consumer route Accepted for its namespace (no conflict across groups)', () => {
    assert.equal(accepted(r, 'shop/tcp', 'TCPRoute')?.status, 'True');
    assert.equal(accepted(r, 'client/mine', 'HTTPRoute')?.status, 'True');
    assert.match(accepted(r, 'client/mine', 'HTTPRoute')?.message ?? '', /namespace client only/);
  });
  it('a GRPCRoute with an invalid match is refused with a reason and a diagnostic', () => {
    const bad = translateYaml(
      BASE +
        route(
          'GRPCRoute',
          'gateway.networking.k8s.io/v1',
          'bad',
          'shop',
          `  parentRefs: [{kind: Service, group: "", name: api, port: 50051}]
  rules: [{matches: [{method: {}}], backendRefs: [{name: api-v2, port: 50051}]}]`,
        ),
    );
    assert.equal(accepted(bad, 'shop/bad', 'GRPCRoute')?.status, 'False');
    assert.ok(bad.diagnostics.some((d) => d.object === 'GRPCRoute/shop/bad' && d.code === 'FERRY_ROUTE_INVALID'));
  });
});

describe('ReferenceGrants name the route kind they allow', () => {
  const grant = (kind: string) => `apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: g-${kind.toLowerCase()}, namespace: shop}
spec:
  from: [{group: gateway.networking.k8s.io, kind: ${kind}, namespace: client}]
  to: [{group: "", kind: Service}]
---
`;
  const viaGateway = route(
    'GRPCRoute',
    'gateway.networking.k8s.io/v1',
    'cross',
    'client',
    `  parentRefs: [{name: wp, namespace: shop}]
  rules: [{backendRefs: [{name: api-v2, namespace: shop, port: 50051}]}]`,
  );
  const resolved = (yaml: string) =>
    translateYaml(BASE + yaml)
      .routeStatus.find((s) => s.key === 'client/cross')
      ?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs');
  it('a grant from HTTPRoutes does not let a GRPCRoute through', () => {
    assert.equal(resolved(grant('HTTPRoute') + viaGateway)?.reason, 'RefNotPermitted');
  });
  it('a grant from GRPCRoutes does', () => {
    const got = resolved(grant('GRPCRoute') + viaGateway);
    assert.equal(got?.status, 'True', got?.message);
  });
  it('the waypoint gets the grant with its kind', () => {
    const r = translateYaml(BASE + grant('GRPCRoute'));
    const entry = r.l7.find((e) => e.kind === 'ReferenceGrant');
    assert.deepEqual(JSON.parse(entry?.json ?? '{}'), { from: 'client', to: 'shop', name: '*', kind: 'GRPCRoute' });
  });
});
