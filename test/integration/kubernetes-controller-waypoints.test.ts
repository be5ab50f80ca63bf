// The Lease holder's writes, against the local API server (real HTTPS): for a Gateway of class
// ferry-waypoint it creates the template's ServiceAccount, Deployment and Service, owned by the Gateway,
// reports the Service's address in the Gateway's status, updates the Deployment when the template changes
// without touching a replica count an HPA set, leaves alone an object it does not manage, and the objects
// go with the Gateway (garbage collection). The trust bundle ConfigMap is written in the controller's
// namespace and in each waypoint namespace once, and not again by later translations or a new leader.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type KubernetesController, startKubernetesController } from '../../src/controller/kubernetes-controller.ts';
import { parseWaypointTemplate } from '../../src/controller/waypoint-template.ts';
import type { Json } from '../../src/kube/client.ts';
import type { LogFields, Logger } from '../../src/runtime/logger.ts';
import { silentLogger } from '../../src/runtime/logger.ts';
import { type LocalApi, startLocalApi } from '../helpers/local-api.ts';

const NS = 'ferry-system';
const CONFIGMAP = 'ferry-ca-root-cert';
const GW = 'gateway.networking.k8s.io/v1';

/** A template shaped like the chart's (charts/ferry/templates/waypoint-template.yaml), smaller. */
function template(logLevel: string): string {
  const owner = `
  ownerReferences:
    - apiVersion: gateway.networking.k8s.io/v1
      kind: Gateway
      name: __GATEWAY_NAME__
      uid: __GATEWAY_UID__
      controller: true`;
  return `apiVersion: v1
kind: ServiceAccount
metadata:
  name: __GATEWAY_NAME__
  namespace: __GATEWAY_NAMESPACE__${owner}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: __GATEWAY_NAME__
  namespace: __GATEWAY_NAMESPACE__
  labels:
    gateway.networking.k8s.io/gateway-name: __GATEWAY_NAME__${owner}
spec:
  replicas: 1
  selector:
    matchLabels:
      gateway.networking.k8s.io/gateway-name: __GATEWAY_NAME__
  template:
    metadata:
      labels:
        gateway.networking.k8s.io/gateway-name: __GATEWAY_NAME__
    spec:
      serviceAccountName: __GATEWAY_NAME__
      containers:
        - name: waypoint
          image: ferry/ferry:test
          args: [waypoint, --waypoint=__GATEWAY_NAMESPACE__/__GATEWAY_NAME__, --log-level=${logLevel}]
      volumes:
        - name: ca-root
          configMap:
            name: ${CONFIGMAP}
---
apiVersion: v1
kind: Service
metadata:
  name: __GATEWAY_NAME__
  namespace: __GATEWAY_NAMESPACE__${owner}
spec:
  selector:
    gateway.networking.k8s.io/gateway-name: __GATEWAY_NAME__
  ports:
    - name: mesh
      port: 15008
`;
}

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, ms = 15_000): Promise<T> {
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
  logLevel = 'info',
): Promise<KubernetesController> {
  const c = await startKubernetesController({
    kube: { kubeconfigPath: api.kubeconfigPath },
    log: silentLogger,
    namespace: NS,
    ca: { secretName: 'ferry-ca' }, // one root for every replica
    rootCertConfigMap: CONFIGMAP,
    waypointTemplate: parseWaypointTemplate(template(logLevel), 'waypoint.yaml'),
    lease: { namespace: NS, identity, durationSeconds: 2, retryMs: 200 },
    rediscoverMs: 300,
  });
  t.after(() => c.close());
  return c;
}

/** Waits until `c` holds the Lease and has done the writes of its latest translation. */
async function leaderSettled(c: KubernetesController): Promise<void> {
  await eventually(async () => (c.elector?.leading === true ? true : undefined), 'the Lease');
  await c.statusSettled();
}

async function namespaces(api: LocalApi, ...names: string[]): Promise<void> {
  for (const name of names) await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
}

function gateway(namespace: string, name: string) {
  return {
    apiVersion: GW,
    kind: 'Gateway',
    metadata: { name, namespace },
    spec: {
      gatewayClassName: 'ferry-waypoint',
      listeners: [{ name: 'mesh', port: 15008, protocol: 'HBONE' }],
    },
  };
}

const getOrNull = (api: LocalApi, v: string, k: string, ns: string, n: string) =>
  api.get(v, k, ns, n).catch((err: { status?: number }) => {
    if (err.status === 404) return null;
    throw err;
  });
/** The API server's log, keeping its per-request debug lines: which writes the controller sent. */
class RequestLog implements Logger {
  readonly requests: { method: string; path: string }[] = [];
  error(): void {}
  warn(): void {}
  info(): void {}
  debug(fields: LogFields, msg: string): void {
    if (msg === 'request') this.requests.push({ method: String(fields.method), path: String(fields.path) });
  }
  isLevelEnabled(): boolean {
    return true;
  }
  child(): Logger {
    return this;
  }
  writesTo(pathEnd: string): number {
    return this.requests.filter((r) => r.method !== 'GET' && r.path.endsWith(pathEnd)).length;
  }
}

const meta = (o: Json) => o.metadata as { uid: string; resourceVersion: string; ownerReferences?: Json[] };
const spec = (o: Json) => o.spec as Record<string, unknown>;

test('a waypoint Gateway gets its Deployment, Service and ServiceAccount, owned by it, and Programmed', async (t) => {
  const api = await startLocalApi(t, { preinstallCrds: true });
  await namespaces(api, NS, 'shop');
  const gw = await api.create(gateway('shop', 'waypoint'));
  const c = await controller(t, api, 'replica-a');
  await leaderSettled(c);

  const objects = await Promise.all([
    api.get('v1', 'ServiceAccount', 'shop', 'waypoint'),
    api.get('apps/v1', 'Deployment', 'shop', 'waypoint'),
    api.get('v1', 'Service', 'shop', 'waypoint'),
  ]);
  for (const o of objects) {
    assert.deepEqual(
      meta(o).ownerReferences?.map((r) => [r.kind, r.name, r.uid, r.controller]),
      [['Gateway', 'waypoint', meta(gw).uid, true]],
      `${String(o.kind)} is owned by the Gateway`,
    );
    assert.equal((o.metadata as { labels: Json }).labels['app.kubernetes.io/managed-by'], 'ferry-controller');
  }
  const [, deployment, service] = objects as [Json, Json, Json];
  const args = (spec(deployment).template as { spec: { containers: { args: string[] }[] } }).spec.containers[0]?.args;
  assert.deepEqual(args, ['waypoint', '--waypoint=shop/waypoint', '--log-level=info']);

  const clusterIP = String(spec(service).clusterIP);
  const status = await eventually(async () => {
    const g = await api.get(GW, 'Gateway', 'shop', 'waypoint');
    const s = g.status as { addresses?: { value: string }[]; conditions?: { type: string; status: string }[] };
    const programmed = s?.conditions?.find((x) => x.type === 'Programmed');
    return programmed?.status === 'True' ? s : undefined;
  }, 'the Gateway Programmed');
  assert.deepEqual(status.addresses, [{ type: 'IPAddress', value: clusterIP }]);

  await api.remove(GW, 'Gateway', 'shop', 'waypoint');
  for (const [v, k] of [
    ['v1', 'ServiceAccount'],
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
  ] as const) {
    assert.equal(await getOrNull(api, v, k, 'shop', 'waypoint'), null, `${k} garbage-collected with the Gateway`);
  }
});

test('a changed template updates the Deployment but keeps the replicas an HPA set; foreign objects are left', async (t) => {
  const requests = new RequestLog();
  const api = await startLocalApi(t, { preinstallCrds: true, log: requests });
  await namespaces(api, NS, 'shop');
  await api.create(gateway('shop', 'waypoint'));
  await api.create(gateway('shop', 'legacy'));
  const foreign = await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'legacy', namespace: 'shop' },
    spec: { ports: [{ name: 'http', port: 80 }] },
  });
  const first = await controller(t, api, 'replica-a');
  await leaderSettled(first);
  const created = await api.get('apps/v1', 'Deployment', 'shop', 'waypoint');
  await api.replace({ ...created, spec: { ...spec(created), replicas: 5 } }); // as an HPA scales it
  const sa = await api.get('v1', 'ServiceAccount', 'shop', 'waypoint');
  await first.close();

  const second = await controller(t, api, 'replica-b', 'debug');
  await leaderSettled(second);
  const updated = await api.get('apps/v1', 'Deployment', 'shop', 'waypoint');
  const args = (spec(updated).template as { spec: { containers: { args: string[] }[] } }).spec.containers[0]?.args;
  assert.deepEqual(args, ['waypoint', '--waypoint=shop/waypoint', '--log-level=debug'], 'the new template');
  assert.equal(spec(updated).replicas, 5, 'the replica count is the HPA’s');
  assert.equal(
    meta(await api.get('v1', 'ServiceAccount', 'shop', 'waypoint')).resourceVersion,
    meta(sa).resourceVersion,
  );
  assert.equal(requests.writesTo('/serviceaccounts/waypoint'), 0, 'its template did not change: not written');
  assert.equal(requests.writesTo('/services/legacy'), 0, 'not labelled as Ferry’s: never written');
  const legacy = await api.get('v1', 'Service', 'shop', 'legacy');
  assert.equal(meta(legacy).resourceVersion, meta(foreign).resourceVersion, 'not labelled as Ferry’s: untouched');
  assert.ok(await getOrNull(api, 'apps/v1', 'Deployment', 'shop', 'legacy'), 'the rest of legacy is made');
});

test('the trust bundle ConfigMap is written once where waypoints run, not again by a new leader', async (t) => {
  const requests = new RequestLog();
  const api = await startLocalApi(t, { preinstallCrds: true, log: requests });
  await namespaces(api, NS, 'shop', 'plain');
  await api.create(gateway('shop', 'waypoint'));
  const a = await controller(t, api, 'replica-a');
  await leaderSettled(a);
  const bundle = a.trustBundlePem().join('');
  const written = new Map<string, string>();
  for (const ns of [NS, 'shop']) {
    const cm = await api.get('v1', 'ConfigMap', ns, CONFIGMAP);
    assert.equal((cm.data as Record<string, string>)['root-cert.pem'], bundle, `${ns}: the CA's bundle`);
    written.set(ns, meta(cm).resourceVersion);
  }
  assert.equal(await getOrNull(api, 'v1', 'ConfigMap', 'plain', CONFIGMAP), null, 'no waypoint there');

  assert.equal(requests.writesTo(`/configmaps/${CONFIGMAP}`), 0, 'no PUT: each was created, and that was all');
  assert.equal(requests.writesTo('/configmaps'), 2, 'one POST per namespace');
  const unchanged = async (when: string) => {
    assert.equal(requests.writesTo('/configmaps') + requests.writesTo(`/configmaps/${CONFIGMAP}`), 2, when);
    for (const [ns, rv] of written) {
      assert.equal(meta(await api.get('v1', 'ConfigMap', ns, CONFIGMAP)).resourceVersion, rv, `${ns}: ${when}`);
    }
  };
  // More translations (a new Service): nothing to write.
  await api.create({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace: 'shop' },
    spec: { ports: [{ name: 'http', port: 80 }] },
  });
  await a.statusSettled();
  await unchanged('not rewritten by a later translation');
  // A new leader reads them again and finds the same bundle (the replicas share the Secret's root).
  const b = await controller(t, api, 'replica-b');
  assert.equal(b.trustBundlePem().join(''), bundle);
  await a.close({ crash: true });
  await leaderSettled(b);
  await unchanged('not rewritten by a new leader');
});
