// The real kubectl v1.34 against the local API server: discovery, get -A, get -w, create/apply/label/
// annotate/scale/delete, custom resources from CRDs (also a CRD installed later), and the error cases a
// user meets (422 naming the field, 409 on a stale resourceVersion, unknown kinds).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { kubectl, startTestApiServer } from '../../helpers/apiserver.ts';
import { k8sToolPath } from '../../helpers/k8s-tools.ts';

const DEMO = `apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
spec:
  selector: {app: echo}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: demo
spec:
  replicas: 2
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo}
    spec:
      containers:
      - name: echo
        image: ferry/http-echo
        ports:
        - containerPort: 8080
`;

const ROUTE = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r1
  namespace: demo
spec:
  parentRefs: [{name: echo, kind: Service, group: ""}]
  rules:
  - backendRefs: [{name: echo, port: 80}]
`;

describe('kubectl against the local API server', () => {
  let srv: Awaited<ReturnType<typeof startTestApiServer>>;
  let dir: string;
  const k = (...args: string[]) => kubectl(srv.kubeconfig, args);
  const ok = async (...args: string[]) => {
    const r = await k(...args);
    assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    srv = await startTestApiServer({ preinstallCrds: true });
    dir = join(srv.dataDir, '..');
  });
  after(() => srv.remove());

  test('version and get -A on a fresh cluster show the default namespaces', async () => {
    assert.match(await ok('version'), /Server Version: v1\.34/);
    const out = await ok('get', 'namespaces');
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease'])
      assert.match(out, new RegExp(`^${ns}\\s+Active`, 'm'));
  });

  test('create -f, then apply -f creates and apply -f of a changed file updates the object', async () => {
    const [ns = '', svc = '', deploy = ''] = DEMO.split('---\n');
    await writeFile(join(dir, 'ns-svc.yaml'), `${ns}---\n${svc}`);
    await writeFile(join(dir, 'deploy.yaml'), deploy);
    await writeFile(join(dir, 'demo.yaml'), DEMO);
    assert.match(await ok('create', '-f', join(dir, 'ns-svc.yaml')), /service\/echo created/);
    assert.match(await ok('apply', '-f', join(dir, 'deploy.yaml')), /deployment.apps\/echo created/);
    const all = await ok('get', '-A', 'deploy,svc');
    assert.match(all, /demo\s+deployment.apps\/echo\s+0\/2/);
    assert.match(all, /demo\s+service\/echo\s+ClusterIP\s+10\.96\.\d+\.\d+/);
    // The changed port replaces the old one: kubectl's three-way strategic merge patch deletes 8080 by key.
    await writeFile(
      join(dir, 'deploy.yaml'),
      deploy.replace('replicas: 2', 'replicas: 3').replace('containerPort: 8080', 'containerPort: 9090'),
    );
    await ok('apply', '-f', join(dir, 'deploy.yaml'));
    const d = JSON.parse(await ok('get', '-n', 'demo', 'deployment', 'echo', '-o', 'json'));
    assert.equal(d.spec.replicas, 3);
    assert.deepEqual(d.spec.template.spec.containers[0].ports, [{ containerPort: 9090 }]);
    assert.equal(d.metadata.generation, 2);
    // A second apply of the same file changes nothing (no new resourceVersion).
    const rv = d.metadata.resourceVersion;
    assert.match(await ok('apply', '-f', join(dir, 'deploy.yaml')), /deployment.apps\/echo unchanged/);
    assert.equal(
      JSON.parse(await ok('get', '-n', 'demo', 'deploy', 'echo', '-o', 'json')).metadata.resourceVersion,
      rv,
    );
  });

  test('label namespace (enroll in ambient) and annotate', async () => {
    await ok('label', 'namespace', 'demo', 'istio.io/dataplane-mode=ambient');
    await ok('annotate', '-n', 'demo', 'service', 'echo', 'note=hello');
    assert.equal(
      await ok('get', 'ns', 'demo', '-o', 'jsonpath={.metadata.labels.istio\\.io/dataplane-mode}'),
      'ambient',
    );
    assert.equal(await ok('get', 'ns', '-l', 'istio.io/dataplane-mode=ambient', '-o', 'name'), 'namespace/demo\n');
    assert.equal(await ok('get', '-n', 'demo', 'svc', 'echo', '-o', 'jsonpath={.metadata.annotations.note}'), 'hello');
  });

  test('scale deployment goes through /scale', async () => {
    await ok('scale', '-n', 'demo', 'deployment', 'echo', '--replicas=5');
    assert.equal(await ok('get', '-n', 'demo', 'deploy', 'echo', '-o', 'jsonpath={.spec.replicas}'), '5');
  });

  test('get -w prints the events of objects created and deleted meanwhile', async () => {
    const child = spawn(k8sToolPath('kubectl'), ['--kubeconfig', srv.kubeconfig, 'get', 'pods', '-A', '-w'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    try {
      await waitFor(() => /NAME/.test(out) || out === '', 10_000); // kubectl is up (header or nothing yet)
      await new Promise((r) => setTimeout(r, 500)); // let kubectl open its watch (list first, then watch)
      await ok('run', '-n', 'demo', 'watched', '--image=ferry/curl');
      await waitFor(() => /demo\s+watched\s+0\/1\s+Pending/.test(out), 10_000);
      await ok('delete', '-n', 'demo', 'pod', 'watched');
      await waitFor(() => out.split('\n').filter((l) => /watched/.test(l)).length >= 2, 10_000);
    } finally {
      child.kill();
    }
  });

  test('custom resources: apply, get -o yaml, label, and a CRD installed later is served at once', async () => {
    await writeFile(join(dir, 'route.yaml'), ROUTE);
    await ok('apply', '-f', join(dir, 'route.yaml'));
    const yaml = await ok('get', 'httproute', 'r1', '-n', 'demo', '-o', 'yaml');
    assert.match(yaml, /apiVersion: gateway.networking.k8s.io\/v1\nkind: HTTPRoute/);
    assert.match(yaml, /generation: 1/);
    await ok('label', '-n', 'demo', 'httproute', 'r1', 'team=a');
    // Delete the CRD: its kind is gone (with its objects), then reinstalled it is served again.
    await ok('delete', 'crd', 'httproutes.gateway.networking.k8s.io');
    const gone = await k('get', 'httproutes', '-n', 'demo');
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /doesn't have a resource type "httproutes"|NotFound.*httproutes/);
    const crd = await ok('get', 'crd', 'gatewayclasses.gateway.networking.k8s.io', '-o', 'json');
    const httpCrd = JSON.parse(crd);
    httpCrd.metadata = { name: 'httproutes.gateway.networking.k8s.io' };
    httpCrd.spec.names = { kind: 'HTTPRoute', plural: 'httproutes', singular: 'httproute', listKind: 'HTTPRouteList' };
    httpCrd.spec.scope = 'Namespaced';
    delete httpCrd.status;
    await writeFile(join(dir, 'crd.json'), JSON.stringify(httpCrd));
    await ok('create', '-f', join(dir, 'crd.json'));
    await ok('apply', '-f', join(dir, 'route.yaml'));
    assert.match(await ok('get', 'httproutes', '-n', 'demo'), /r1/);
  });

  test('an invalid object is refused with 422 and kubectl prints the field', async () => {
    await writeFile(
      join(dir, 'bad.yaml'),
      'apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: demo}\nspec:\n  ports:\n  - port: 70000\n',
    );
    const r = await k('create', '-f', join(dir, 'bad.yaml'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /The Service "bad" is invalid: spec\.ports\[0\]\.port: Invalid value/);
    await writeFile(
      join(dir, 'badap.yaml'),
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: demo}\nspec: {action: MAYBE}\n',
    );
    const ap = await k('apply', '-f', join(dir, 'badap.yaml'));
    assert.match(ap.stderr, /spec\.action: Invalid value: must be one of ALLOW, DENY, AUDIT, CUSTOM/);
  });

  test('an update with a stale resourceVersion is a 409 Conflict', async () => {
    const stale = await ok('get', '-n', 'demo', 'deploy', 'echo', '-o', 'json');
    await ok('scale', '-n', 'demo', 'deploy', 'echo', '--replicas=1');
    await writeFile(join(dir, 'stale.json'), stale);
    const r = await k('replace', '-f', join(dir, 'stale.json'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(Conflict\).*the object has been modified/);
  });

  test('imperative create of a namespace, service account, configmap, secret (sent as protobuf) works; other generators are refused clearly', async () => {
    await ok('create', 'namespace', 'imperative', '--dry-run=server');
    await ok('create', 'namespace', 'imperative');
    await ok('create', 'serviceaccount', '-n', 'imperative', 'robot');
    const sa = JSON.parse(await ok('get', '-n', 'imperative', 'sa', 'robot', '-o', 'json'));
    assert.equal(sa.metadata.namespace, 'imperative');
    assert.equal(sa.metadata.generateName, undefined);
    const d = await k('create', 'deployment', '-n', 'imperative', 'x', '--image=y');
    assert.notEqual(d.code, 0);
    assert.match(
      d.stderr,
      /protobuf is decoded only for Namespace, ServiceAccount, ConfigMap and Secret, not Deployment.*kubectl create -f/,
    );
    await ok('create', 'configmap', '-n', 'imperative', 'cm', '--from-literal=root-cert.pem=abc');
    await ok('create', 'secret', 'generic', '-n', 'imperative', 'sec', '--from-literal=k=v');
    assert.equal(await ok('get', '-n', 'imperative', 'cm', 'cm', '-o', 'jsonpath={.data.root-cert\\.pem}'), 'abc');
    const secret = await ok('get', '-n', 'imperative', 'secret', 'sec', '-o', 'jsonpath={.data.k} {.type}');
    assert.equal(secret, `${Buffer.from('v').toString('base64')} Opaque`);
  });

  test('unknown kinds and a missing namespace get clear errors', async () => {
    await writeFile(join(dir, 'widget.yaml'), 'apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n');
    const r = await k('apply', '-f', join(dir, 'widget.yaml'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no matches for kind "Widget" in version "example.com\/v1"/);
    const ns = await k('run', '-n', 'nope', 'p', '--image=x');
    assert.match(ns.stderr, /namespaces "nope" not found/);
  });

  test('delete -f removes what the file names; deleting a namespace removes its objects', async () => {
    await ok('delete', '-f', join(dir, 'route.yaml'));
    assert.doesNotMatch(await ok('get', 'httproutes', '-A'), /r1/);
    await ok('delete', '-f', join(dir, 'demo.yaml'));
    const left = await k('get', '-n', 'demo', 'deploy,svc,pods');
    assert.match(left.stderr, /No resources found/);
  });
});

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
