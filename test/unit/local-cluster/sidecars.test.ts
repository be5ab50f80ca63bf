// The local runtime's side of sidecar mode, pure parts: an injected pod becomes a cluster pod with
// `sidecar: true` and only its app containers (the proxy is started by `ferry up`, not as an image);
// `ferry exec` lands in the first app container of such a pod; the sidecar's flags are validated.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { buildClusterState } from '../../../src/controller/sources/types.ts';
import { listPods } from '../../../src/controller/translate/translate.ts';
import { enrollmentPaths } from '../../../src/local-cluster/controller/enrollment.ts';
import { clusterSpecFromPods } from '../../../src/local-cluster/manifest-spec.ts';
import { execCgroupDir } from '../../../src/local-cluster/sidecars.ts';
import type { StateRecord } from '../../../src/local-cluster/state.ts';
import { parseSidecarFlags, sidecarXdsNodeId } from '../../../src/ztunnel/sidecar/sidecar.ts';

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: {name: side, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: side}
spec: {containers: [{name: app, image: ferry/echo, ports: [{containerPort: 8080}]}, {name: helper, image: busybox}]}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: side, labels: {sidecar.istio.io/inject: "false"}}
spec: {containers: [{name: app, image: ferry/echo}]}
`;

test('an injected pod: sidecar flag, app containers only; an opted-out pod unchanged', () => {
  const parsed = parseManifestText(MANIFEST, 'm.yaml', { defaultNamespace: 'default', firstSequence: 0 });
  assert.deepEqual(parsed.diagnostics, []);
  const pods = listPods(buildClusterState(parsed.objects), { injectSidecars: true });
  const web = pods.find((p) => p.name === 'web');
  assert.deepEqual(
    web?.spec.containers.map((c) => c.name),
    ['app', 'helper', 'istio-proxy'],
  );
  assert.equal(web?.labels.get('networking.istio.io/tunnel'), 'http');
  assert.match(web?.annotations.get('sidecar.istio.io/status') ?? '', /"containers":\["istio-proxy"\]/);
  const spec = clusterSpecFromPods('t', 1, pods);
  const byName = new Map(spec.pods.map((p) => [p.name, p]));
  assert.equal(byName.get('web')?.sidecar, true);
  assert.deepEqual(
    byName.get('web')?.containers.map((c) => c.name),
    ['app', 'helper'],
  );
  assert.equal(byName.get('legacy')?.sidecar, undefined);
  assert.deepEqual(
    byName.get('legacy')?.containers.map((c) => c.name),
    ['app'],
  );
});

test('ferry exec: first app container of a sidecar pod, else the pod cgroup', () => {
  const pod = '/cg/pods/node-0/side_web';
  const cg = (path: string): StateRecord => ({ kind: 'cgroup', path });
  const journal = [cg(pod), cg(`${pod}/app`), cg(`${pod}/helper`), cg(`${pod}/istio-proxy`), cg('/cg/other/app')];
  assert.equal(execCgroupDir(journal, { cgroupDir: pod }), `${pod}/app`);
  assert.equal(execCgroupDir(journal.slice(0, 3), { cgroupDir: pod }), pod, 'no sidecar: the pod cgroup');
  assert.equal(execCgroupDir([cg(`${pod}/istio-proxy`)], { cgroupDir: pod }), pod, 'no app container');
});

test('sidecar flags: each missing or bad one is named', () => {
  const ok = {
    sidecar: 'Kubernetes//Pod/side/web',
    netns: '/run/netns/p',
    'cgroup-root': '/cg/pod',
    'app-cgroup': ['/cg/pod/app'],
    'pin-root': '/sys/fs/bpf/x',
  };
  assert.deepEqual(parseSidecarFlags(ok), {
    uid: 'Kubernetes//Pod/side/web',
    netnsPath: '/run/netns/p',
    podCgroup: '/cg/pod',
    appCgroups: ['/cg/pod/app'],
    pinRoot: '/sys/fs/bpf/x',
  });
  assert.throws(() => parseSidecarFlags({ ...ok, sidecar: '' }), /--sidecar/);
  assert.throws(() => parseSidecarFlags({ ...ok, netns: 'relative' }), /--netns/);
  assert.throws(() => parseSidecarFlags({ ...ok, 'app-cgroup': [] }), /--app-cgroup/);
  assert.throws(() => parseSidecarFlags({ ...ok, 'app-cgroup': ['/cg/elsewhere'] }), /not inside --cgroup-root/);
  assert.throws(() => parseSidecarFlags({ ...ok, 'app-cgroup': ['/cg/pod'] }), /not inside --cgroup-root/);
});

test("a sidecar's xDS Node.id is Istio's sidecar shape, never the node proxy's `ztunnel~…~<node>`", () => {
  assert.equal(sidecarXdsNodeId('Kubernetes//Pod/side/web'), 'sidecar~127.0.0.1~web.side~side.svc.cluster.local');
  assert.equal(sidecarXdsNodeId('odd'), 'sidecar~127.0.0.1~odd');
});

test('a pod created with a sidecar is never handed to its node ztunnel, whatever its labels say later', () => {
  const pod = { netnsPath: '/run/netns/p', cgroupDir: '/cg/p' };
  assert.deepEqual(enrollmentPaths(pod), { netnsPath: '/run/netns/p', cgroupPath: '/cg/p' });
  assert.equal(enrollmentPaths({ ...pod, sidecar: true }), undefined);
  assert.equal(enrollmentPaths(undefined), undefined);
});
