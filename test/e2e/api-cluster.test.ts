// `ferry up --api -f examples/demo`: the mesh on the local cluster's own Kubernetes API, driven with the
// real kubectl v1.34 (docs/operations.md "Clusters on the API"). The demo's Deployments become pods through
// the API (scheduler, ReplicaSets, kubelets); labelling the namespace with kubectl enrolls them through the
// ztunnels' node agents (no push from the controller); a name resolves through cluster DNS and the call
// crosses both ztunnels over HBONE; a replica added with `kubectl scale` is enrolled as it starts; an
// HTTPRoute gets Ferry's status, visible with `kubectl get -o yaml`; invalid objects get 422 naming the
// field, duplicates 409; `ferry label` removes the label and the pods leave the mesh (a call to a pod IP
// then arrives from the client's own address); `ferry down` leaves
// nothing (checked in FerryCli.up's t.after).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { privilegedTest } from '../../testkit/privileged.ts';
import { type ApiPodRow, apiPods, until } from '../helpers/api-cluster.ts';
import { DEMO, FerryCli, kubectl } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('api');
test.after(() => cli.remove());

type PodRow = ApiPodRow;

const pods = (cluster: string): Promise<ApiPodRow[]> => apiPods(cli, cluster);

const demoPods = (all: readonly PodRow[]) => all.filter((p) => p.namespace === 'demo');

privilegedTest('ferry up --api: kubectl drives the mesh; node agents enroll from the API', async (t) => {
  const { cluster, up } = await cli.up(t, 'api', DEMO, 2, ['--api']);
  assert.match(up.stdout, /on its Kubernetes API/);
  const kubeconfig = join(cli.stateRoot, cluster, 'kubeconfig');

  const listed = await kubectl(kubeconfig, ['get', 'pods', '-A', '-o', 'wide']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /demo\s+client-\S+\s+1\/1\s+Running/);
  assert.match(listed.stdout, /legacy\s+outsider\s+1\/1\s+Running/);
  assert.ok(
    demoPods(await pods(cluster)).every((p) => !p.enrolled && !p.ambient),
    'nothing enrolled yet',
  );

  const labeled = await kubectl(kubeconfig, ['label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
  assert.equal(labeled.code, 0, labeled.stderr);
  const enrolled = await until('every demo pod enrolled', async () => {
    const d = demoPods(await pods(cluster));
    return d.length === 3 && d.every((p) => p.enrolled) ? d : false;
  });
  const client = enrolled.find((p) => p.name.startsWith('client-'));
  assert.ok(client !== undefined);

  // By name (cluster DNS), through both ztunnels: the server sees the inbound ztunnel's 127.0.0.6.
  const meshed = await cli.curl(cluster, `demo/${client.name}`, 'http://echo.demo/');
  assert.ok(meshed.echo !== null, meshed.run.stdout + meshed.run.stderr);
  assert.equal(meshed.echo.peer.address, '127.0.0.6');

  const scaled = await kubectl(kubeconfig, ['scale', 'deployment', 'echo-v1', '-n', 'demo', '--replicas=2']);
  assert.equal(scaled.code, 0, scaled.stderr);
  await until('the new echo-v1 replica enrolled', async () => {
    const v1 = demoPods(await pods(cluster)).filter((p) => p.name.startsWith('echo-v1-'));
    return v1.length === 2 && v1.every((p) => p.enrolled && p.phase === 'Running');
  });

  const route = join(cli.stateRoot, 'route.yaml');
  writeFileSync(
    route,
    `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo-route, namespace: demo}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - backendRefs: [{name: echo, port: 80}]
`,
  );
  const applied = await kubectl(kubeconfig, ['apply', '-f', route]);
  assert.equal(applied.code, 0, applied.stderr);
  const status = await until('the HTTPRoute status', async () => {
    const r = await kubectl(kubeconfig, ['get', 'httproute', 'echo-route', '-n', 'demo', '-o', 'yaml']);
    return /controllerName: ferry\.dev\/waypoint-controller/.test(r.stdout) ? r.stdout : false;
  });
  assert.match(status, /reason: Accepted\n\s+status: "True"\n\s+type: Accepted/);

  const invalid = await kubectl(
    kubeconfig,
    ['apply', '-f', '-'],
    'apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: demo}\nspec:\n  ports: [{port: 70000}]\n',
  );
  assert.notEqual(invalid.code, 0);
  assert.match(invalid.stderr, /is invalid: spec\.ports\[0\]\.port/);
  const duplicate = await kubectl(kubeconfig, ['create', 'namespace', 'demo']);
  assert.notEqual(duplicate.code, 0);
  assert.match(duplicate.stderr, /AlreadyExists/);

  const unlabeled = await cli.run(['label', 'namespace', 'demo', 'istio.io/dataplane-mode-', '--cluster', cluster]);
  assert.equal(unlabeled.code, 0, unlabeled.stderr);
  await until('every demo pod out of the mesh', async () =>
    demoPods(await pods(cluster)).every((p) => !p.enrolled && !p.ambient),
  );
  // No kube-proxy here: outside the mesh a Service VIP leads nowhere (as in the file-based cluster), pod IPs do.
  const echo = enrolled.find((p) => p.name.startsWith('echo-v2-'));
  assert.ok(echo !== undefined);
  const plain = await until('a plaintext call once the pods left the mesh', async () => {
    const r = await cli.curl(cluster, `demo/${client.name}`, `http://${echo.ip}:8080/`);
    return r.echo !== null && r.echo.peer.address === client.ip ? r.echo : false;
  });
  assert.equal(plain.peer.address, client.ip);
});
