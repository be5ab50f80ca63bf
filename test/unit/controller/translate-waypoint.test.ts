// Waypoints in translation: the waypoint's pod, workload and Service, and Istio's implicit "allow from the
// waypoint" for workloads behind it that have ALLOW policies (and only for those).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ns, translateYaml } from '../../helpers/controller-fixtures.ts';

const GATEWAY = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: shop}
spec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
`;
const pod = (name: string, app: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: shop, labels: {app: ${app}}}\nspec: {containers: [{name: c, ports: [{containerPort: 8080}]}]}\n---\n`;
const svc = (name: string, app: string) =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: shop}\nspec: {selector: {app: ${app}}, ports: [{port: 80, targetPort: 8080}]}\n---\n`;
const ALLOW_CLIENT = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-client, namespace: shop}
spec:
  selector: {matchLabels: {app: locked}}
  action: ALLOW
  rules: [{from: [{source: {principals: [cluster.local/ns/shop/sa/client]}}]}]
---
`;

test('a waypoint becomes an HBONE workload + Service; locked workloads behind it allow the waypoint', () => {
  const r = translateYaml(
    ns('shop', '{istio.io/dataplane-mode: ambient, istio.io/use-waypoint: wp}') +
      GATEWAY +
      pod('locked-0', 'locked') +
      pod('open-0', 'open') +
      svc('locked', 'locked') +
      svc('open', 'open') +
      ALLOW_CLIENT,
  );
  const wp = r.config.workloads.find((w) => w.name === 'wp-waypoint');
  assert.ok(wp);
  assert.equal(wp.protocol, 'HBONE');
  assert.equal(wp.serviceAccount, 'wp');
  assert.equal(wp.waypoint, null, 'a waypoint never uses a waypoint');
  assert.deepEqual(r.waypointWorkloads, [wp.uid]);
  const wpSvc = r.config.services.find((s) => s.hostname === 'wp.shop.svc.cluster.local');
  assert.deepEqual(wpSvc?.ports, [{ servicePort: 15008, targetPort: 15008 }]);

  const locked = r.config.workloads.find((w) => w.name === 'locked-0');
  const open = r.config.workloads.find((w) => w.name === 'open-0');
  assert.deepEqual(locked?.authorizationPolicies, ['shop/only-client', 'shop/istio_allow_waypoint_shop_wp']);
  assert.deepEqual(open?.authorizationPolicies, [], 'no ALLOW policy: default-allow stays');
  const implicit = r.config.policies.find((p) => p.name === 'istio_allow_waypoint_shop_wp');
  assert.equal(implicit?.action, 'Allow');
  assert.equal(implicit?.scope, 'WorkloadSelector');
  assert.deepEqual(implicit?.rules[0]?.[0]?.[0]?.principals, [{ kind: 'exact', value: 'cluster.local/ns/shop/sa/wp' }]);
  assert.deepEqual(
    r.l7.map((e) => e.name),
    ['Gateway/shop/wp'],
  );
});

test('ReferenceGrant: a route bound to the waypoint Gateway may reach another namespace only with a grant', () => {
  const other = `apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n---\n${svc('remote', 'remote').replaceAll('namespace: shop', 'namespace: other')}`;
  const route = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: cross, namespace: shop}
spec:
  parentRefs: [{name: wp}]
  rules: [{backendRefs: [{name: remote, namespace: other, port: 80}]}]
---
`;
  const grant = `apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: from-shop, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: shop}]
  to: [{group: "", kind: Service}]
---
`;
  const base = ns('shop', '{istio.io/dataplane-mode: ambient}') + GATEWAY + other + route;
  const resolved = (yaml: string) =>
    translateYaml(yaml).routeStatus[0]?.parents[0]?.conditions.find((c) => c.type === 'ResolvedRefs');
  assert.equal(resolved(base)?.reason, 'RefNotPermitted');
  assert.equal(resolved(base + grant)?.status, 'True');
  assert.ok(translateYaml(base + grant).l7.some((e) => e.name === 'ReferenceGrant/shop|other|*'));
});
