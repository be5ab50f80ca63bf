// `startKubernetesController` against the local cluster's API server (real HTTPS): objects created through
// the API reach a ztunnel's xDS client (TLS) as workloads; HTTPRoute, waypoint Gateway and GatewayClass status is
// written through /status once and not rewritten while nothing changed; of two replicas only the Lease
// holder writes status, and when it dies the other takes over within the lease duration.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type KubernetesController, startKubernetesController } from '../../src/controller/kubernetes-controller.ts';
import type { Json } from '../../src/kube/client.ts';
import { MeshStore } from '../../src/mesh/mesh-store.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { XdsClient } from '../../src/xds/client.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';

const LEASE_S = 2;

/** Polls `fn` until it returns a value (state we cannot subscribe to: the API's stored status). */
async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function controller(
  t: import('node:test').TestContext,
  api: LocalApi,
  identity: string,
): Promise<KubernetesController> {
  const c = await startKubernetesController({
    kube: { kubeconfigPath: api.kubeconfigPath },
    log: silentLogger,
    lease: { identity, durationSeconds: LEASE_S, retryMs: 200 },
    rediscoverMs: 300,
  });
  t.after(() => c.close());
  return c;
}

async function runningPod(api: LocalApi, name: string, ip: string, labels: Record<string, string> = { app: 'echo' }) {
  const created = await api.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'demo', labels },
    spec: {
      nodeName: 'node-a',
      containers: [{ name: 'app', image: 'echo', ports: [{ name: 'http', containerPort: 8080 }] }],
    },
  });
  return api.writeStatus({ ...created, status: { phase: 'Running', podIP: ip } });
}

const route = (name: string) => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name, namespace: 'demo' },
  spec: {
    parentRefs: [{ group: '', kind: 'Service', name: 'echo', port: 80 }],
    rules: [{ backendRefs: [{ name: 'echo', port: 80 }] }],
  },
});

function routeCondition(
  obj: Json,
  type: string,
): { status: string; reason: string; lastTransitionTime: string } | undefined {
  const parents = (obj.status as { parents?: { controllerName: string; conditions: { type: string }[] }[] } | undefined)
    ?.parents;
  const mine = parents?.find((p) => p.controllerName === 'ferry.dev/waypoint-controller');
  return mine?.conditions.find((c) => c.type === type) as never;
}

const rvOf = (o: Json) => String((o.metadata as { resourceVersion: string }).resourceVersion);

test('API objects reach a ztunnel over xDS; status written once and not rewritten when unchanged', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'demo', labels: { 'istio.io/dataplane-mode': 'ambient' } },
  });
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  });
  await runningPod(api, 'echo-1', '10.1.0.7');
  const c = await controller(t, api, 'replica-a');

  const store = new MeshStore();
  let onResponse = () => {};
  const xds = new XdsClient({
    address: c.xds.address,
    tls: { rootCertPem: c.trustBundlePem().join('') }, // xDS is TLS in Kubernetes mode
    nodeId: 'ztunnel~127.0.0.1~node-a',
    nodeName: 'node-a',
    store,
    backoff: { initialMs: 20, maxMs: 200 },
    onResponse: () => onResponse(),
  });
  t.after(() => xds.close());
  await xds.start();
  const workload = (name: string) => store.view.workloads.find((w) => w.name === name);
  const plain = await eventually(() => workload('echo-1'), 'the pod as a workload at the ztunnel');
  // Ambient by its namespace, but no node agent reported it captured yet: peers must not tunnel to it.
  assert.deepEqual([plain.addresses, plain.protocol, plain.node], [['10.1.0.7'], 'TCP', 'node-a']);
  // What the node agent writes once it enrolled the pod (Istio's annotation): now HBONE.
  const pod = await api.get('v1', 'Pod', 'demo', 'echo-1');
  const meta = pod.metadata as { annotations?: Record<string, string> };
  await api.replace({
    ...pod,
    metadata: { ...meta, annotations: { ...meta.annotations, 'ambient.istio.io/redirection': 'enabled' } },
  });
  const w = await eventually(
    () => (workload('echo-1')?.protocol === 'HBONE' ? workload('echo-1') : undefined),
    'the pod announced as HBONE once annotated',
  );
  assert.deepEqual([w.addresses, w.protocol, w.node], [['10.1.0.7'], 'HBONE', 'node-a']);
  const svc = store.view.services.find((s) => s.name === 'echo');
  assert.deepEqual(
    svc?.ports.map((p) => [p.servicePort, p.targetPort]),
    [[80, 0]],
  );
  assert.deepEqual([...(w.services.get('demo/echo.demo.svc.cluster.local') ?? [])], [[80, 8080]]);

  // Latency: from the API's answer to the kubelet-style status write to the ztunnel holding the workload.
  const samples: number[] = [];
  for (let i = 0; i < 15; i++) {
    const name = `echo-lat-${i}`;
    const created = await api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'demo', labels: { app: 'echo' } },
      spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'echo' }] },
    });
    const arrived = new Promise<void>((resolve) => {
      onResponse = () => {
        if (workload(name) !== undefined) resolve();
      };
    });
    await api.writeStatus({ ...created, status: { phase: 'Running', podIP: `10.1.1.${i + 1}` } });
    const t0 = performance.now();
    await arrived;
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  t.diagnostic(
    `API answer → workload applied at the ztunnel: p50 ${samples[7]!.toFixed(1)} ms, max ${samples.at(-1)!.toFixed(1)} ms`,
  );

  // GatewayClass and HTTPRoute status, written by the only replica (it takes the lease).
  await api.create({
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GatewayClass',
    metadata: { name: 'ferry-waypoint' },
    spec: { controllerName: 'ferry.dev/waypoint-controller' },
  });
  await api.create(route('r1'));
  const stored = await eventually(async () => {
    const o = await api.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'demo', 'r1');
    return routeCondition(o, 'Accepted')?.status === 'True' ? o : undefined;
  }, 'HTTPRoute status Accepted');
  assert.equal(routeCondition(stored, 'ResolvedRefs')?.status, 'True');
  const gc = await eventually(async () => {
    const o = await api.get('gateway.networking.k8s.io/v1', 'GatewayClass', '', 'ferry-waypoint');
    return (o.status as { conditions?: { type: string; status: string }[] })?.conditions?.some(
      (x) => x.type === 'Accepted' && x.status === 'True',
    )
      ? o
      : undefined;
  }, 'GatewayClass Accepted');
  assert.ok(gc);

  // Unrelated changes retranslate (and recompute status) but write nothing: the route keeps its version.
  await c.statusSettled();
  const writes = c.statusWriter.writes;
  for (let i = 0; i < 3; i++) await runningPod(api, `other-${i}`, `10.1.2.${i + 1}`, { app: 'other' });
  await eventually(() => workload('other-2'), 'the other pods');
  await c.statusSettled();
  const after = await api.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'demo', 'r1');
  assert.equal(rvOf(after), rvOf(stored), 'no status rewrite while nothing changed');
  assert.equal(c.statusWriter.writes, writes);
  assert.equal(
    routeCondition(after, 'Accepted')?.lastTransitionTime,
    routeCondition(stored, 'Accepted')?.lastTransitionTime,
  );

  // A backend that disappears flips ResolvedRefs (one write), with a new lastTransitionTime there only.
  await api.replace({
    ...after,
    spec: { ...(after.spec as object), rules: [{ backendRefs: [{ name: 'gone', port: 80 }] }] },
  });
  const flipped = await eventually(async () => {
    const o = await api.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'demo', 'r1');
    return routeCondition(o, 'ResolvedRefs')?.status === 'False' ? o : undefined;
  }, 'ResolvedRefs False');
  assert.equal(routeCondition(flipped, 'ResolvedRefs')?.reason, 'BackendNotFound');
  assert.equal(
    routeCondition(flipped, 'Accepted')?.lastTransitionTime,
    routeCondition(stored, 'Accepted')?.lastTransitionTime,
  );
});

test('two replicas: only the Lease holder writes status; killing it moves the lease within its duration', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'demo' } });
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'demo' },
    spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  });
  const a = await controller(t, api, 'replica-a');
  await eventually(() => (a.elector?.leading ? true : undefined), 'replica-a to lead');
  const b = await controller(t, api, 'replica-b');
  await api.create(route('r1'));
  await eventually(async () => {
    const o = await api.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'demo', 'r1');
    return routeCondition(o, 'Accepted') === undefined ? undefined : o;
  }, 'status of r1');
  await a.statusSettled();
  await b.statusSettled();
  assert.equal(b.elector?.leading, false);
  assert.ok(a.statusWriter.writes >= 1);
  assert.equal(b.statusWriter.writes, 0, 'the replica without the lease writes nothing');
  // Both serve xDS meanwhile.
  assert.equal(a.xds.serving && b.xds.serving, true);

  const killedAt = performance.now();
  await a.close({ crash: true }); // no release: the lease must expire
  await eventually(() => (b.elector?.leading ? true : undefined), 'replica-b to take over', LEASE_S * 1000 + 3000);
  const tookMs = performance.now() - killedAt;
  t.diagnostic(`lease moved ${tookMs.toFixed(0)} ms after the leader died (lease ${LEASE_S} s, retry 200 ms)`);
  assert.ok(tookMs <= LEASE_S * 1000 + 1000, `took ${tookMs} ms`);
  const lease = await api.get('coordination.k8s.io/v1', 'Lease', 'kube-system', 'ferry-controller');
  assert.equal((lease.spec as { holderIdentity: string }).holderIdentity, 'replica-b');
  assert.ok((lease.spec as { leaseTransitions: number }).leaseTransitions >= 1);
  await api.create(route('r2'));
  await eventually(async () => {
    const o = await api.get('gateway.networking.k8s.io/v1', 'HTTPRoute', 'demo', 'r2');
    return routeCondition(o, 'Accepted') === undefined ? undefined : o;
  }, 'the new leader to write r2 status');
  await b.statusSettled(); // the API may show the write before b has read the answer
  assert.ok(b.statusWriter.writes >= 1);
});
