// The rendered chart sent to an API server: Ferry's local Kubernetes API server (src/local-cluster/apiserver)
// with real kubectl v1.34: `apply --dry-run=server`, then `apply`, of every object whose kind that server
// serves; the waypoint objects created for a real Gateway (its uid in their ownerReferences); and a value
// that only the API server's validation refuses. Kinds the local server does not serve yet (DaemonSet, RBAC,
// PodDisruptionBudget, ConfigMap) are listed in the test's diagnostics and checked only by the schema
// validation of test/integration/helm-chart.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import { type ApiServer, startApiServer } from '../../src/local-cluster/apiserver/server.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { find, NAMESPACE, render, waypointObjects } from '../helpers/helm-render.ts';
import type { KubeObject } from '../helpers/k8s-schema.ts';
import { k8sToolPath } from '../helpers/k8s-tools.ts';

let dir = '';
let server: ApiServer | null = null;
let kubeconfig = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-chart-api-'));
  kubeconfig = join(dir, 'kubeconfig');
  // preinstallCrds: the Gateway API and Istio CRDs, as an operator installs them before the chart.
  server = await startApiServer({
    dataDir: join(dir, 'data'),
    port: 0,
    log: silentLogger,
    kubeconfigPath: kubeconfig,
    preinstallCrds: true,
  });
});

after(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

// Asynchronous: the API server runs in this process, so kubectl must not block its event loop.
async function kubectl(args: readonly string[], input?: string): Promise<{ status: number; out: string }> {
  const child = spawn(k8sToolPath('kubectl'), [...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECONFIG: kubeconfig },
    timeout: 60_000,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stdin.end(input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { status: code ?? -1, out };
}

function manifest(objects: readonly KubeObject[]): string {
  return objects.map((o) => `---\n${stringify(o)}`).join('');
}

/** `<apiVersion>/<kind>` of every kind the server serves, from discovery as kubectl sees it. */
async function servedKinds(): Promise<Set<string>> {
  const r = await kubectl(['api-resources', '--no-headers']);
  assert.equal(r.status, 0, r.out);
  const kinds = new Set<string>();
  for (const line of r.out.trim().split('\n')) {
    const cols = line.trim().split(/\s+/);
    const kind = cols.at(-1);
    const apiVersion = cols.find((c) => c === 'v1' || /^[a-z0-9.-]+\/v[0-9a-z]+$/.test(c));
    if (kind !== undefined && apiVersion !== undefined) kinds.add(`${apiVersion}/${kind}`);
  }
  return kinds;
}

test('every rendered object of a served kind is accepted (dry run, then for real) and reads back as sent', async (t) => {
  const objects = render();
  const served = await servedKinds();
  const accepted = objects.filter((o) => served.has(`${o.apiVersion}/${o.kind}`));
  const notServed = objects.filter((o) => !served.has(`${o.apiVersion}/${o.kind}`));
  t.diagnostic(
    `not served by the local API server: ${notServed.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`,
  );
  // At least these; when the local API server learns more kinds (DaemonSet, RBAC, …) they are sent too.
  const sent = new Set(accepted.map((o) => `${o.kind}/${o.metadata.name}`));
  for (const expected of [
    'CustomResourceDefinition/authorizationpolicies.security.istio.io',
    'CustomResourceDefinition/peerauthentications.security.istio.io',
    'ServiceAccount/ferry-controller',
    'ServiceAccount/ferry-ztunnel',
    'Service/ferry-controller',
    'Deployment/ferry-controller',
    'GatewayClass/ferry-waypoint',
  ]) {
    assert.ok(sent.has(expected), `${expected} is not served by the local API server`);
  }
  const ns = await kubectl(
    ['apply', '-f', '-'],
    manifest([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }]),
  );
  assert.equal(ns.status, 0, ns.out);
  const dry = await kubectl(['apply', '--dry-run=server', '-f', '-'], manifest(accepted));
  assert.equal(dry.status, 0, dry.out);
  const real = await kubectl(['apply', '-f', '-'], manifest(accepted));
  assert.equal(real.status, 0, real.out);

  const got = await kubectl(['get', 'deployment', 'ferry-controller', '-n', NAMESPACE, '-o', 'json']);
  assert.equal(got.status, 0, got.out);
  const stored = JSON.parse(got.out) as KubeObject & {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  const rendered = find(objects, 'Deployment', 'ferry-controller') as typeof stored;
  assert.deepEqual(stored.spec.template.spec.containers[0]?.args, rendered.spec.template.spec.containers[0]?.args);
  const crd = await kubectl([
    'get',
    'crd',
    'authorizationpolicies.security.istio.io',
    '-o',
    'jsonpath={.spec.versions[*].name}',
  ]);
  assert.equal(crd.out, 'v1 v1beta1');
});

test('the waypoint objects are accepted for a real Gateway and carry its uid as owner', async () => {
  const shop = await kubectl(
    ['apply', '-f', '-'],
    manifest([
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
      {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'Gateway',
        metadata: { name: 'waypoint', namespace: 'shop' },
        spec: { gatewayClassName: 'ferry-waypoint', listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }] },
      },
    ]),
  );
  assert.equal(shop.status, 0, shop.out);
  const uid = (await kubectl(['get', 'gateway', 'waypoint', '-n', 'shop', '-o', 'jsonpath={.metadata.uid}'])).out;
  assert.match(uid, /^[0-9a-f-]{36}$/);
  const { raw } = waypointObjects(render());
  const filled = JSON.parse(
    JSON.stringify(raw)
      .replaceAll('__GATEWAY_NAME__', 'waypoint')
      .replaceAll('__GATEWAY_NAMESPACE__', 'shop')
      .replaceAll('__GATEWAY_UID__', uid),
  ) as KubeObject[];
  const created = await kubectl(['apply', '-f', '-'], manifest(filled));
  assert.equal(created.status, 0, created.out);
  for (const kind of ['serviceaccount', 'deployment', 'service']) {
    const owner = await kubectl([
      'get',
      kind,
      'waypoint',
      '-n',
      'shop',
      '-o',
      'jsonpath={.metadata.ownerReferences[0].uid}',
    ]);
    assert.equal(owner.out, uid, kind);
  }
});

test('a value only the API server can judge is refused with 422 naming the field', async () => {
  // A label key with a space passes the chart's schema and the OpenAPI types (a string map) but not the API.
  const objects = render(['--set-json', 'controller.podLabels={"team name":"mesh"}']);
  const deployment = find(objects, 'Deployment', 'ferry-controller');
  const r = await kubectl(['apply', '--dry-run=server', '-f', '-'], manifest([deployment]));
  assert.notEqual(r.status, 0, r.out);
  assert.match(r.out, /is invalid/);
  assert.match(r.out, /labels/);
});
