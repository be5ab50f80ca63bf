// The waypoint template (charts/ferry/README.md, "Waypoints"): only ServiceAccounts, Services and
// Deployments in the Gateway's namespace are accepted; placeholders are filled in string values only (a
// Gateway name cannot add structure); every object gets the managed-by label and a hash that changes
// exactly when the filled object does. And what a replacement keeps of the stored object.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ControllerError } from '../../../src/controller/errors.ts';
import { updated } from '../../../src/controller/waypoint-deployer.ts';
import {
  fillWaypointTemplate,
  MANAGED_BY_LABEL,
  parseWaypointTemplate,
  TEMPLATE_HASH_ANNOTATION,
} from '../../../src/controller/waypoint-template.ts';

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: __GATEWAY_NAME__
  namespace: __GATEWAY_NAMESPACE__
  ownerReferences: [{apiVersion: gateway.networking.k8s.io/v1, kind: Gateway, name: __GATEWAY_NAME__, uid: __GATEWAY_UID__}]
spec:
  replicas: 1
  template:
    spec:
      containers: [{name: waypoint, args: ["--waypoint=__GATEWAY_NAMESPACE__/__GATEWAY_NAME__"]}]
`;
const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: __GATEWAY_NAME__, namespace: __GATEWAY_NAMESPACE__}
spec: {ports: [{name: mesh, port: 15008}]}
`;
const GW = { namespace: 'shop', name: 'waypoint', uid: 'uid-1' };

test('refused templates name the file and the problem', () => {
  const cases: [string, RegExp][] = [
    [
      'apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: __GATEWAY_NAMESPACE__}\n',
      /v1\/Secret is not one of/,
    ],
    [SERVICE, /no Deployment in the template/],
    [DEPLOYMENT.replace('namespace: __GATEWAY_NAMESPACE__', 'namespace: kube-system'), /must be __GATEWAY_NAMESPACE__/],
    [DEPLOYMENT.replace('  name: __GATEWAY_NAME__\n', ''), /metadata\.name must be set/],
    ['kind: [unclosed\n', /document 1/],
    ['- a list\n', /document 1 is not an object/],
  ];
  for (const [text, pattern] of cases) {
    assert.throws(
      () => parseWaypointTemplate(text, 'waypoint.yaml'),
      (err: unknown) =>
        err instanceof ControllerError &&
        err.code === 'FERRY_CONTROLLER_WAYPOINT_TEMPLATE_INVALID' &&
        err.message.startsWith('waypoint.yaml: ') &&
        pattern.test(err.message),
      pattern.source,
    );
  }
});

test('placeholders are filled in string values; labels and the hash are added', () => {
  const template = parseWaypointTemplate(`${DEPLOYMENT}---\n${SERVICE}---\n`, 'waypoint.yaml');
  const [deployment, service] = fillWaypointTemplate(template, GW);
  assert.deepEqual(
    [deployment?.kind, deployment?.namespace, deployment?.name],
    ['apps/v1/Deployment', 'shop', 'waypoint'],
  );
  assert.equal(service?.kind, 'v1/Service');
  const d = deployment?.object as { metadata: Record<string, Record<string, unknown>>; spec: unknown };
  assert.deepEqual(d.metadata.ownerReferences, [
    { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', name: 'waypoint', uid: 'uid-1' },
  ]);
  assert.equal(d.metadata.labels?.[MANAGED_BY_LABEL], 'ferry-controller');
  assert.equal(d.metadata.annotations?.[TEMPLATE_HASH_ANNOTATION], deployment?.hash);
  assert.match(JSON.stringify(d.spec), /"--waypoint=shop\/waypoint"/);

  // A name that looks like YAML stays one string.
  const [odd] = fillWaypointTemplate(template, { ...GW, name: 'x\nkind: Secret' });
  assert.ok(odd);
  assert.equal(odd.name, 'x\nkind: Secret');
  assert.equal(odd.object.kind, 'Deployment');
});

test('the hash is stable for the same Gateway and changes with the Gateway or the template', () => {
  const template = parseWaypointTemplate(DEPLOYMENT, 'waypoint.yaml');
  const hash = (t = template, gw = GW) => fillWaypointTemplate(t, gw)[0]?.hash;
  assert.equal(hash(), hash());
  assert.notEqual(hash(), hash(template, { ...GW, uid: 'uid-2' }));
  assert.notEqual(hash(), hash(parseWaypointTemplate(DEPLOYMENT.replace('replicas: 1', 'replicas: 2'), 'w.yaml')));
});

test('a replacement keeps the stored replicas, cluster IPs, resourceVersion and others’ labels', () => {
  const template = parseWaypointTemplate(`${DEPLOYMENT}---\n${SERVICE}`, 'waypoint.yaml');
  const [deployment, service] = fillWaypointTemplate(template, GW);
  assert.ok(deployment && service);
  const storedMeta = { name: 'waypoint', namespace: 'shop', resourceVersion: '7', labels: { team: 'a' } };
  const d = updated(deployment, { metadata: storedMeta, spec: { replicas: 5 } });
  assert.equal((d.spec as { replicas: number }).replicas, 5);
  const meta = d.metadata as { resourceVersion: string; labels: Record<string, string> };
  assert.equal(meta.resourceVersion, '7');
  assert.deepEqual(meta.labels, { team: 'a', [MANAGED_BY_LABEL]: 'ferry-controller' });
  const s = updated(service, {
    metadata: storedMeta,
    spec: { clusterIP: '10.96.0.9', clusterIPs: ['10.96.0.9'], ports: [{ port: 1 }] },
  });
  assert.deepEqual(s.spec, {
    ports: [{ name: 'mesh', port: 15008 }],
    clusterIP: '10.96.0.9',
    clusterIPs: ['10.96.0.9'],
  });
});
