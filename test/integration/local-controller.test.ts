// The local-mode controller in-process (no root): real xDS/CA/admin servers on loopback, the runtime's
// journal and mesh.json written by the test, and a stand-in ztunnel admin (real HTTP) recording enrollment
// calls. Checks: enrollment follows labels (POST, then DELETE on `label …-`), retries until the ztunnel
// answers, VIPs persist across a controller restart, hostile admin requests get 400 and the API keeps
// serving; plus the pure helpers (placement, manifest → spec, label parsing, overrides, desired set).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseManifestText } from '../../src/controller/sources/manifest-source.ts';
import { buildClusterState } from '../../src/controller/sources/types.ts';
import { listPods } from '../../src/controller/translate/translate.ts';
import { startAdminApi } from '../../src/local-cluster/controller/admin-api.ts';
import { desiredEnrollments } from '../../src/local-cluster/controller/enrollment.ts';
import { applyLabelOverrides, parseLabelChanges } from '../../src/local-cluster/controller/labeled-source.ts';
import { startLocalController } from '../../src/local-cluster/controller/local-controller.ts';
import {
  adminSocketPath,
  type LocalMeshConfig,
  writeMeshConfig,
} from '../../src/local-cluster/controller/mesh-files.ts';
import { placePods } from '../../src/local-cluster/controller/placement.ts';
import { clusterSpecFromPods } from '../../src/local-cluster/manifest-spec.ts';
import { adminSocketRequest } from '../../src/runtime/admin-socket.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: apps, labels: {istio.io/dataplane-mode: ambient}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: apps}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: echo, image: ferry/echo, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: apps}
spec: {selector: {app: echo}, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pinned, namespace: apps}
spec: {nodeName: node-1, containers: [{name: c, image: busybox, command: [sleep, infinity]}]}
`;

function state() {
  const parsed = parseManifestText(MANIFEST, 'm.yaml', { defaultNamespace: 'default', firstSequence: 0 });
  assert.deepEqual(parsed.diagnostics, []);
  return buildClusterState(parsed.objects);
}

test('manifests → cluster spec: nodeName pins, replicas spread round-robin, containers mapped', () => {
  const spec = clusterSpecFromPods('demo', 2, listPods(state()));
  assert.deepEqual(
    spec.pods.map((p) => [p.name, p.node]),
    [
      ['echo-0', 0],
      ['echo-1', 1],
      ['pinned', 1],
    ],
  );
  assert.deepEqual(spec.pods[0]?.containers, [{ name: 'echo', image: 'ferry/echo', ports: [8080] }]);
  assert.deepEqual(spec.pods[2]?.containers[0]?.command, ['sleep', 'infinity']);
  assert.throws(() => clusterSpecFromPods('demo', 1, listPods(state())), /nodeName "node-1" is not one of node-0/);
});

test('placement: created pods are placed on node-<n>; pods the runtime lacks are pending', () => {
  const created = [
    {
      kind: 'pod',
      namespace: 'apps',
      name: 'echo-0',
      node: 1,
      ip: '10.244.1.2',
      netnsPath: '/n',
      cgroupDir: '/c',
      labels: {},
    },
  ] as const;
  const { placement, pending } = placePods(listPods(state()), created);
  assert.deepEqual([...placement], [['apps/echo-0', { ip: '10.244.1.2', node: 'node-1' }]]);
  assert.deepEqual(pending, ['apps/echo-1', 'apps/pinned']);
});

test('labels: parse key=value / key-, reject bad syntax; overrides relabel and synthesize namespaces', () => {
  assert.deepEqual(parseLabelChanges(['istio.io/dataplane-mode-', 'a=b', 'x=']), [
    { key: 'istio.io/dataplane-mode', value: null },
    { key: 'a', value: 'b' },
    { key: 'x', value: '' },
  ]);
  for (const bad of ['', '-', '=v', 'a b=c', 'k=bad value', `${'x'.repeat(64)}=1`, 'Bad_Prefix/k=v', '__proto__/x=1']) {
    assert.throws(() => parseLabelChanges([bad]), { code: 'FERRY_LOCAL_BAD_REQUEST' }, bad);
  }
  assert.throws(() => parseLabelChanges([]), { code: 'FERRY_LOCAL_BAD_REQUEST' });
  const next = applyLabelOverrides(
    state(),
    new Map([
      ['Namespace/apps', { 'istio.io/dataplane-mode': null }],
      ['Namespace/other', { 'istio.io/dataplane-mode': 'ambient' }],
    ]),
  );
  assert.equal(next.namespaces.find((n) => n.metadata.name === 'apps')?.metadata.labels.size, 0);
  assert.equal(
    next.namespaces.find((n) => n.metadata.name === 'other')?.metadata.labels.get('istio.io/dataplane-mode'),
    'ambient',
  );
});

test('desired enrollments: HBONE workloads with runtime paths, grouped by node', () => {
  const w = (name: string, node: string, protocol: 'HBONE' | 'TCP') =>
    ({ uid: `K//Pod/apps/${name}`, name, namespace: 'apps', node, protocol }) as Parameters<
      typeof desiredEnrollments
    >[0][number];
  const desired = desiredEnrollments(
    [w('a', 'node-0', 'HBONE'), w('b', 'node-0', 'TCP'), w('c', 'node-1', 'HBONE'), w('gone', 'node-1', 'HBONE')],
    (_ns, name) => (name === 'gone' ? undefined : { netnsPath: `/run/netns/${name}`, cgroupPath: `/cg/${name}` }),
    ['node-0', 'node-1', 'node-2'],
  );
  assert.deepEqual([...(desired.get('node-0')?.keys() ?? [])], ['K//Pod/apps/a']);
  assert.deepEqual([...(desired.get('node-1')?.keys() ?? [])], ['K//Pod/apps/c']);
  assert.equal(desired.get('node-2')?.size, 0);
});

/** A stand-in for a ztunnel's admin /pods API, recording calls; `down` until `up()`. */
async function fakeZtunnelAdmin(t: test.TestContext, socketPath: string) {
  const enrolled = new Map<string, unknown>();
  const calls: string[] = [];
  let available = false;
  let onRefused: () => void = () => undefined;
  const refused = new Promise<void>((resolve) => {
    onRefused = resolve;
  });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      if (!available) {
        onRefused();
        res.writeHead(503).end('{"code":"FERRY_INPOD_UNKNOWN_WORKLOAD"}');
        return;
      }
      calls.push(`${req.method} ${req.url}`);
      if (req.method === 'GET') res.end(JSON.stringify({ pods: [...enrolled.values()] }));
      else if (req.method === 'POST') {
        const pod = JSON.parse(body) as { uid: string };
        enrolled.set(pod.uid, pod);
        res.end(JSON.stringify({ pod }));
      } else {
        const uid = decodeURIComponent(String(req.url).slice('/pods/'.length));
        res.writeHead(enrolled.delete(uid) ? 200 : 404).end('{}');
      }
    });
  });
  // The controller enrolls over the node ztunnel's admin socket (its TCP admin port takes no change).
  server.listen(socketPath);
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  return { address: '127.0.0.1:9', enrolled, calls, refused, up: () => (available = true) };
}

test('local controller: enrollment follows labels, retries until the ztunnel answers, VIPs persist, hostile admin input', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-local-controller-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.yaml'), MANIFEST);
  const journal = ['echo-0', 'echo-1', 'pinned'].map((name, i) =>
    JSON.stringify({
      kind: 'pod',
      namespace: 'apps',
      name,
      node: 1,
      ip: `10.244.1.${i + 2}`,
      netnsPath: `/run/netns/x_${name}`,
      cgroupDir: `/cg/${name}`,
      labels: {},
    }),
  );
  writeFileSync(join(dir, 'objects.jsonl'), `${journal.join('\n')}\n`);
  const zt = await fakeZtunnelAdmin(t, adminSocketPath(dir, 'ztunnel-node-1'));
  const config: LocalMeshConfig = {
    cluster: 'demo',
    trustDomain: 'cluster.local',
    manifests: [join(dir, 'm.yaml')],
    controller: { xds: '127.0.0.1:0', ca: '127.0.0.1:0', admin: '127.0.0.1:0' },
    nodes: [{ name: 'node-1', admin: zt.address, metrics: '127.0.0.1:0', readiness: '127.0.0.1:0', token: 'tok' }],
  };
  await writeMeshConfig(dir, config);

  const controller = await startLocalController(dir, silentLogger);
  t.after(() => controller.close());
  const admin = await startAdminApi(controller);
  t.after(() => admin.close());
  await zt.refused; // the reconciler tried while the ztunnel was down …
  assert.equal(controller.enrollment.converged, false);
  zt.up(); // … and retries until it answers
  await controller.enrollment.whenConverged(t.signal);
  assert.deepEqual([...zt.enrolled.keys()].sort(), [
    'Kubernetes//Pod/apps/echo-0',
    'Kubernetes//Pod/apps/echo-1',
    'Kubernetes//Pod/apps/pinned',
  ]);
  const vip = controller.placement.vips.get('apps/echo');
  assert.ok(vip !== undefined);

  const post = (path: string, rawBody: string, headers: Record<string, string> = {}) =>
    adminSocketRequest(adminSocketPath(dir, 'controller'), 'POST', path, { rawBody, headers });
  // Over TCP, a change is refused before it is parsed.
  const overTcp = await fetch(`${admin.url}/label`, {
    method: 'POST',
    body: JSON.stringify({ kind: 'Namespace', name: 'apps', changes: ['istio.io/dataplane-mode-'] }),
  });
  assert.equal(overTcp.status, 403);
  assert.equal(zt.enrolled.size, 3);
  // Unenroll by label (the xDS wait ends at once: no ztunnel is connected to this controller's xDS).
  const res = await post(
    '/label',
    JSON.stringify({ kind: 'Namespace', name: 'apps', changes: ['istio.io/dataplane-mode-'] }),
  );
  assert.equal(res.status, 200, res.text);
  const reply = JSON.parse(res.text) as { enrollmentConverged: boolean; labels: Record<string, string> };
  assert.equal(reply.enrollmentConverged, true);
  assert.deepEqual(reply.labels, {});
  assert.equal(zt.enrolled.size, 0);
  assert.ok(zt.calls.some((c) => c.startsWith('DELETE /pods/Kubernetes%2F%2FPod%2Fapps%2Fecho-0')));

  // Hostile input: each gets a 4xx, and the API keeps serving.
  const garbage = [
    '',
    'not json',
    '[]',
    'null',
    '{"paths":"x"}',
    '{"paths":["relative.yaml"]}',
    '{"__proto__":{"paths":["/x"]}}',
  ];
  for (const body of garbage) assert.equal((await post('/apply', body)).status, 400, body);
  for (const body of [
    '{}',
    '{"kind":"Pod","name":"echo-0","namespace":"apps","changes":["a=b"]}',
    '{"kind":"Namespace","name":"apps","changes":["bad key=1"]}',
  ]) {
    assert.equal((await post('/label', body)).status, 400, body);
  }
  assert.equal((await post('/apply', '{}', { origin: 'http://evil' })).status, 403);
  const sock = connect(admin.address.port, '127.0.0.1');
  t.after(() => sock.destroy());
  sock.write(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
  const [answer] = (await once(sock, 'data')) as [Buffer];
  assert.match(answer.toString('latin1'), /^HTTP\/1\.1 400/);
  sock.destroy();
  assert.equal((await fetch(`${admin.url}/status`)).status, 200);

  // A restarted controller keeps the VIP and the label override.
  await admin.close();
  await controller.close();
  const again = await startLocalController(dir, silentLogger);
  t.after(() => again.close());
  assert.equal(again.placement.vips.get('apps/echo'), vip);
  await again.enrollment.whenConverged(t.signal);
  assert.equal(zt.enrolled.size, 0, 'the namespace stays unlabelled');
});
