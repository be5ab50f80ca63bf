// Sidecar injection on pod CREATE (`ferry up --api`): which pods get `istio-proxy`, what the injected pod
// looks like, and that the local API server stores the injected pod (as Istio's webhook would leave it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  admitPodForSidecar,
  parseSidecarInjectionValues,
  SIDECAR_KUBELET_ENV,
  SIDECAR_ROOT_VOLUME,
  SIDECAR_TOKEN_VOLUME,
  type SidecarInjectionValues,
} from '../../../../src/local-cluster/apiserver/sidecar-admission.ts';
import { INJECT_POD_KEY, SIDECAR_STATUS_ANNOTATION, TUNNEL_LABEL } from '../../../../src/mesh/sidecar-injection.ts';
import { startLocalApi } from '../../../helpers/local-api.ts';

const values: SidecarInjectionValues = {
  image: 'ferry/ferry:local',
  trustDomain: 'cluster.local',
  xdsAddress: '10.244.255.254:15010',
  caAddress: '10.244.255.254:15012',
  caAudience: 'ferry-ca',
  rootCertConfigMap: 'ferry-ca-root-cert',
};

type Obj = Record<string, unknown>;
function pod(opts: { labels?: Obj; annotations?: Obj; containers?: string[] } = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p', namespace: 'ns', labels: opts.labels ?? {}, annotations: opts.annotations ?? {} },
    spec: {
      containers: (opts.containers ?? ['app']).map((name) => ({ name, image: 'ferry/ferry' })),
      volumes: [{ name: 'data', emptyDir: {} }],
    },
  };
}
const names = (p: Obj) => ((p.spec as Obj).containers as Obj[]).map((c) => c.name);

const cases: { name: string; ns: string; nsLabels: Obj; pod: Obj; inject: boolean; reason: string }[] = [
  {
    name: 'namespace enabled',
    ns: 'ns',
    nsLabels: { 'istio-injection': 'enabled' },
    pod: pod(),
    inject: true,
    reason: 'namespace-enabled',
  },
  { name: 'plain namespace', ns: 'ns', nsLabels: {}, pod: pod(), inject: false, reason: 'not-selected' },
  {
    name: 'ambient namespace',
    ns: 'ns',
    nsLabels: { 'istio.io/dataplane-mode': 'ambient' },
    pod: pod(),
    inject: false,
    reason: 'not-selected',
  },
  {
    name: 'pod opt-in label',
    ns: 'ns',
    nsLabels: {},
    pod: pod({ labels: { [INJECT_POD_KEY]: 'true' } }),
    inject: true,
    reason: 'pod-opt-in',
  },
  {
    name: 'pod opt-in annotation',
    ns: 'ns',
    nsLabels: {},
    pod: pod({ annotations: { [INJECT_POD_KEY]: 'true' } }),
    inject: true,
    reason: 'pod-opt-in',
  },
  {
    name: 'pod opt-out in enabled namespace',
    ns: 'ns',
    nsLabels: { 'istio-injection': 'enabled' },
    pod: pod({ labels: { [INJECT_POD_KEY]: 'false' } }),
    inject: false,
    reason: 'pod-opt-out',
  },
  {
    name: 'namespace disabled beats pod opt-in',
    ns: 'ns',
    nsLabels: { 'istio-injection': 'disabled' },
    pod: pod({ labels: { [INJECT_POD_KEY]: 'true' } }),
    inject: false,
    reason: 'namespace-disabled',
  },
  {
    name: 'system namespace',
    ns: 'kube-system',
    nsLabels: { 'istio-injection': 'enabled' },
    pod: pod(),
    inject: false,
    reason: 'system-namespace',
  },
  {
    name: 'already has istio-proxy',
    ns: 'ns',
    nsLabels: { 'istio-injection': 'enabled' },
    pod: pod({ containers: ['app', 'istio-proxy'] }),
    inject: false,
    reason: 'already-injected',
  },
  {
    name: 'already has status annotation',
    ns: 'ns',
    nsLabels: { 'istio-injection': 'enabled' },
    pod: pod({ annotations: { [SIDECAR_STATUS_ANNOTATION]: '{}' } }),
    inject: false,
    reason: 'already-injected',
  },
];

for (const c of cases) {
  test(`admission: ${c.name} → ${c.inject ? 'injected' : 'left alone'} (${c.reason})`, () => {
    const r = admitPodForSidecar(c.pod, c.ns, c.nsLabels as Record<string, string>, values);
    assert.equal(r.decision.inject, c.inject);
    assert.equal(r.decision.reason, c.reason);
    if (!c.inject) assert.equal(r.pod, c.pod, 'a pod not selected is stored as sent');
    else assert.deepEqual(names(r.pod), [...names(c.pod), 'istio-proxy']);
  });
}

test('an injected pod: Istio labels and status, the sidecar container, its volumes; the input is not modified', () => {
  const input = pod({ labels: { app: 'server' } });
  const before = structuredClone(input);
  const { pod: out } = admitPodForSidecar(input, 'ns', { 'istio-injection': 'enabled' }, values);
  assert.deepEqual(input, before);
  const meta = out.metadata as { labels: Obj; annotations: Obj };
  assert.equal(meta.labels.app, 'server');
  assert.equal(meta.labels[TUNNEL_LABEL], 'http');
  assert.deepEqual(JSON.parse(String(meta.annotations[SIDECAR_STATUS_ANNOTATION])).containers, ['istio-proxy']);
  const spec = out.spec as { containers: Obj[]; volumes: Obj[] };
  const proxy = spec.containers.find((c) => c.name === 'istio-proxy') as Obj;
  assert.equal(proxy.image, 'ferry/ferry:local');
  const args = proxy.args as string[];
  assert.deepEqual(args.slice(0, 3), ['ztunnel', '--sidecar', 'Kubernetes//Pod/$(POD_NAMESPACE)/$(POD_NAME)']);
  const flag = (f: string) => args[args.indexOf(f) + 1];
  assert.equal(flag('--xds-address'), values.xdsAddress);
  assert.equal(flag('--ca-address'), values.caAddress);
  assert.equal(flag('--netns'), `$(${SIDECAR_KUBELET_ENV.netns})`);
  assert.equal(flag('--cgroup-root'), `$(${SIDECAR_KUBELET_ENV.cgroupRoot})`);
  assert.equal(flag('--app-cgroup'), `$(${SIDECAR_KUBELET_ENV.appCgroups})`);
  assert.equal(flag('--pin-root'), `$(${SIDECAR_KUBELET_ENV.pinRoot})`);
  const envNames = (proxy.env as Obj[]).map((e) => e.name);
  assert.deepEqual(envNames, ['POD_NAME', 'POD_NAMESPACE', 'NODE_NAME']);
  assert.deepEqual(
    spec.volumes.map((v) => v.name),
    ['data', SIDECAR_TOKEN_VOLUME, SIDECAR_ROOT_VOLUME],
  );
  const token = spec.volumes.find((v) => v.name === SIDECAR_TOKEN_VOLUME) as {
    projected: { sources: { serviceAccountToken: { audience: string } }[] };
  };
  assert.equal(token.projected.sources[0]?.serviceAccountToken.audience, 'ferry-ca');
});

test('the local API server injects on pod CREATE from the namespace labels, and only there', async (t) => {
  const api = await startLocalApi(t, { sidecarInjection: values });
  for (const [name, labels] of [
    ['mesh', { 'istio-injection': 'enabled' }],
    ['plain', {}],
  ] as const) {
    await api.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
    await api.create({ ...pod(), metadata: { name: 'p', namespace: name } });
  }
  const mesh = (await api.get('v1', 'Pod', 'mesh', 'p')) as Obj;
  const plain = (await api.get('v1', 'Pod', 'plain', 'p')) as Obj;
  assert.deepEqual(names(mesh), ['app', 'istio-proxy']);
  assert.deepEqual(names(plain), ['app']);
  // An update is not an admission of a new pod: the stored sidecar stays, nothing is added twice.
  const replaced = (await api.replace(mesh)) as Obj;
  assert.deepEqual(names(replaced), ['app', 'istio-proxy']);
});

test('without sidecarInjection the API server stores pods as sent', async (t) => {
  const api = await startLocalApi(t);
  await api.create({
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: 'mesh', labels: { 'istio-injection': 'enabled' } },
  });
  await api.create({ ...pod(), metadata: { name: 'p', namespace: 'mesh' } });
  assert.deepEqual(names((await api.get('v1', 'Pod', 'mesh', 'p')) as Obj), ['app']);
});

test('the injection values file: parsed when complete, a clear reason when not', () => {
  assert.deepEqual(parseSidecarInjectionValues(JSON.stringify(values)), values);
  assert.match(String(parseSidecarInjectionValues('{')), /not JSON/);
  assert.equal(parseSidecarInjectionValues('[]'), 'expected a JSON object');
  const { caAddress: _, ...partial } = values;
  assert.equal(
    parseSidecarInjectionValues(JSON.stringify({ ...partial, image: '' })),
    'missing or empty string field(s): image, caAddress',
  );
});
