// charts/ferry checked with the real helm v4 (lint, template over several value sets) and every rendered
// object, the waypoint template's objects and the CRDs validated against the Kubernetes v1.34 OpenAPI schema
// (test/helpers/k8s-schema.ts). Assertions are what an operator would notice: RBAC verbs, the node agent's
// privileges, probes, the PDB, one CA token audience everywhere, pinned image tags.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import {
  CHART_DIR,
  container,
  find,
  flag,
  helm,
  NAMESPACE,
  podSpec,
  render,
  waypointObjects,
} from '../helpers/helm-render.ts';
import { type KubeObject, validateObject } from '../helpers/k8s-schema.ts';

const VALUE_SETS: Record<string, string[]> = {
  defaults: [],
  'cacerts plug-in': ['--set', 'ca.cacertsSecret=cacerts'],
  'custom trust domain': ['--set', 'trustDomain=corp.example.com', '--set', 'clusterDomain=k8s.corp'],
  'ServiceMonitor on': [
    '--set',
    'metrics.serviceMonitor.enabled=true',
    '--set',
    'metrics.serviceMonitor.labels.release=prom',
  ],
  'one replica': ['--set', 'controller.replicas=1'],
  'digest, pull secrets, custom audience': [
    '--set',
    `image.digest=sha256:${'a'.repeat(64)}`,
    '--set',
    'imagePullSecrets[0].name=regcred',
    '--set',
    'ca.tokenAudience=mesh-ca.corp',
    '--set-json',
    'ztunnel.seLinuxOptions={"type":"spc_t"}',
  ],
};

type Rule = { apiGroups: string[]; resources: string[]; resourceNames?: string[]; verbs: string[] };
const rules = (o: KubeObject): Rule[] => o.rules as Rule[];

async function allProblems(objects: readonly KubeObject[]): Promise<string[]> {
  return (await Promise.all(objects.map(validateObject))).flat();
}

describe('helm lint and schema validation of every rendered object', () => {
  for (const [name, args] of Object.entries(VALUE_SETS)) {
    test(name, async () => {
      const lint = helm(['lint', '--strict', CHART_DIR, '--namespace', NAMESPACE, ...args]);
      assert.equal(lint.status, 0, `helm lint: ${lint.stdout}${lint.stderr}`);
      const objects = render(args);
      assert.ok(objects.length >= 15, `only ${objects.length} objects rendered`);
      assert.deepEqual(await allProblems(objects), []);
      const wp = waypointObjects(objects);
      assert.deepEqual(
        wp.filled.map((o) => o.kind),
        ['ServiceAccount', 'Deployment', 'Service'],
      );
      assert.deepEqual(await allProblems(wp.filled), []);
    });
  }
});

test('NOTES: what to check next, and which root of trust the CA uses', () => {
  const notes = (args: string[]): string => {
    const r = helm(['install', 'ferry', CHART_DIR, '--namespace', NAMESPACE, '--dry-run=client', ...args]);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.slice(r.stdout.indexOf('NOTES:'));
  };
  const generated = notes([]);
  assert.match(generated, /kubectl get pods -n ferry-system/);
  assert.match(generated, /kubectl label namespace <ns> istio\.io\/dataplane-mode=ambient/);
  assert.match(generated, /generated its own root \(kept in Secret ferry-ca-secret\)/);
  assert.match(notes(['--set', 'ca.cacertsSecret=cacerts']), /plugged-in root from Secret cacerts/);
});

describe('a broken value set is caught', () => {
  test('by the chart values schema: latest tag, zero replicas, unknown keys, both rollout bounds zero', () => {
    const cases: [string[], RegExp][] = [
      [['--set', 'image.tag=latest'], /\/image\/tag/],
      [['--set', 'controller.replicas=0'], /\/controller\/replicas/],
      [['--set', 'controler.replicas=2'], /additional properties 'controler'/],
      [['--set', 'ztunnel.updateStrategy.maxSurge=0'], /\/ztunnel\/updateStrategy/],
      [['--set', 'logLevel=verbose'], /\/logLevel/],
      [['--set', 'ztunnel.hostPaths.bpffs=sys/fs/bpf'], /\/ztunnel\/hostPaths\/bpffs/],
      [['--set', 'waypoint.resources.requests.cpu=lots'], /\/waypoint\/resources\/requests\/cpu/],
    ];
    for (const [args, message] of cases) {
      const r = helm(['template', 'ferry', CHART_DIR, '--namespace', NAMESPACE, ...args]);
      assert.notEqual(r.status, 0, `${args.join(' ')} was accepted`);
      assert.match(r.stderr, message, `${args.join(' ')}: ${r.stderr}`);
    }
  });

  test('by the Kubernetes schema: free-form values that render an invalid or unknown field', async () => {
    // tolerations and affinity are passed through as given; the values schema cannot know their shape.
    const badType = render(['--set-json', 'controller.tolerations=[{"key":"a","operator":"Exists","effect":7}]']);
    const typeProblems = await allProblems(badType);
    assert.equal(typeProblems.length, 1, typeProblems.join('\n'));
    assert.match(typeProblems[0] as string, /Deployment ferry-controller: .*tolerations\/0\/effect must be string/);

    const typo = render(['--set-json', 'ztunnel.affinity={"nodeAfinity":{}}']);
    assert.deepEqual(await allProblems(typo), [
      'DaemonSet ferry-ztunnel: unknown field spec.template.spec.affinity.nodeAfinity',
    ]);
  });
});

describe('what an operator relies on', () => {
  const objects = render();
  const controller = find(objects, 'Deployment', 'ferry-controller');
  const ztunnel = find(objects, 'DaemonSet', 'ferry-ztunnel');
  const waypoint = find(waypointObjects(objects).filled, 'Deployment', 'waypoint');

  test('controller RBAC: exactly these cluster-wide verbs, no wildcard, no Secrets', () => {
    const read = ['get', 'list', 'watch'];
    const manage = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
    assert.deepEqual(rules(find(objects, 'ClusterRole', 'ferry-controller')), [
      { apiGroups: [''], resources: ['namespaces', 'pods', 'nodes'], verbs: read },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: read },
      { apiGroups: ['security.istio.io'], resources: ['authorizationpolicies', 'peerauthentications'], verbs: read },
      {
        apiGroups: ['gateway.networking.k8s.io'],
        resources: ['gatewayclasses', 'gateways', 'httproutes', 'referencegrants'],
        verbs: read,
      },
      {
        apiGroups: ['gateway.networking.k8s.io'],
        resources: ['gatewayclasses/status', 'gateways/status', 'httproutes/status'],
        verbs: ['update'],
      },
      { apiGroups: [''], resources: ['services', 'serviceaccounts'], verbs: manage },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: manage },
      { apiGroups: [''], resources: ['configmaps'], verbs: ['create'] },
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['ferry-ca-root-cert'], verbs: ['get', 'update'] },
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
    ]);
    for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const r of rules(o)) {
        assert.ok(!r.verbs.includes('*') && !r.resources.includes('*') && !r.apiGroups.includes('*'), o.metadata.name);
        if (o.kind === 'ClusterRole') assert.ok(!r.resources.includes('secrets'), `${o.metadata.name} reads Secrets`);
      }
    }
  });

  test('controller Role: its Lease, and the generated-root Secret only without a cacerts plug-in', () => {
    const lease = [
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['ferry-controller'],
        verbs: ['get', 'update'],
      },
    ];
    const role = find(objects, 'Role', 'ferry-controller');
    assert.equal(role.metadata.namespace, NAMESPACE);
    assert.deepEqual(rules(role), [
      ...lease,
      { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
      { apiGroups: [''], resources: ['secrets'], resourceNames: ['ferry-ca-secret'], verbs: ['get'] },
    ]);
    const plugged = render(['--set', 'ca.cacertsSecret=cacerts']);
    assert.deepEqual(rules(find(plugged, 'Role', 'ferry-controller')), lease);
  });

  test('ztunnel RBAC: list/watch of pods and namespaces, patch of pods (redirection annotation), nothing else', () => {
    assert.deepEqual(rules(find(objects, 'ClusterRole', 'ferry-ztunnel')), [
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['patch'] },
    ]);
    const binding = find(objects, 'ClusterRoleBinding', 'ferry-ztunnel');
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'ferry-ztunnel', namespace: NAMESPACE }]);
  });

  test('ztunnel DaemonSet: exactly four capabilities, three read-only-or-pin host mounts, no host namespaces', () => {
    const spec = podSpec(ztunnel);
    const c = container(ztunnel, 'ztunnel');
    assert.deepEqual(c.securityContext?.capabilities, {
      drop: ['ALL'],
      add: ['BPF', 'NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE'],
    });
    assert.equal(c.securityContext?.privileged, false);
    assert.equal(c.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(c.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(spec.hostNetwork, undefined);
    assert.equal(spec.hostPID, undefined);
    assert.equal(spec.hostIPC, undefined);
    assert.equal(spec.priorityClassName, 'system-node-critical');
    const hostPaths = (spec.volumes ?? [])
      .filter((v) => v.hostPath !== undefined)
      .map((v) => ({ name: v.name, path: (v.hostPath as { path: string }).path }));
    assert.deepEqual(hostPaths, [
      { name: 'bpffs', path: '/sys/fs/bpf' },
      { name: 'cgroup2', path: '/sys/fs/cgroup' },
      { name: 'host-proc', path: '/proc' },
    ]);
    const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.name, m]));
    assert.equal(mounts.get('cgroup2')?.readOnly, true);
    assert.equal(mounts.get('host-proc')?.readOnly, true);
    assert.equal(mounts.get('bpffs')?.mountPath, '/sys/fs/bpf');
    assert.ok(
      (c.ports ?? []).every((p) => p.hostPort === undefined),
      'a hostPort would block maxSurge',
    );
    assert.equal(flag(c.args, '--cgroup-root'), '/host/sys/fs/cgroup/kubepods.slice');
    assert.equal(flag(c.args, '--pin-root'), '/sys/fs/bpf/ferry');
    assert.deepEqual((ztunnel.spec as { updateStrategy: unknown }).updateStrategy, {
      type: 'RollingUpdate',
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
  });

  test('probes on 15021: /healthz/ready for readiness, /healthz/live for liveness, on every process', () => {
    for (const [w, name] of [
      [controller, 'controller'],
      [ztunnel, 'ztunnel'],
      [waypoint, 'waypoint'],
    ] as const) {
      const c = container(w, name);
      assert.deepEqual(c.readinessProbe?.httpGet, { path: '/healthz/ready', port: 15021 }, name);
      assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz/live', port: 15021 }, name);
      assert.equal(flag(c.args, '--readiness'), '0.0.0.0:15021', name);
      assert.equal(flag(c.args, '--metrics'), '0.0.0.0:15020', name);
    }
  });

  test('controller: 2 replicas behind a PDB that matches them; none with one replica', () => {
    assert.equal((controller.spec as { replicas: number }).replicas, 2);
    const pdb = find(objects, 'PodDisruptionBudget', 'ferry-controller');
    const spec = pdb.spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(spec.minAvailable, 1);
    const podLabels = (controller.spec as { template: { metadata: { labels: Record<string, string> } } }).template
      .metadata.labels;
    for (const [k, v] of Object.entries(spec.selector.matchLabels)) assert.equal(podLabels[k], v, k);
    const one = render(['--set', 'controller.replicas=1']);
    assert.equal(
      one.find((o) => o.kind === 'PodDisruptionBudget'),
      undefined,
    );
    const args = container(controller, 'controller').args;
    assert.equal(flag(args, '--lease-name'), 'ferry-controller');
    assert.equal(flag(args, '--lease-namespace'), '$(POD_NAMESPACE)');
    assert.equal(flag(args, '--identity'), '$(POD_NAME)');
  });

  test('one CA token audience: the ztunnel and waypoint tokens are minted for what the controller checks', () => {
    for (const args of [[], ['--set', 'ca.tokenAudience=mesh-ca.corp']]) {
      const objs = render(args);
      const controllerAudience = flag(
        container(find(objs, 'Deployment', 'ferry-controller'), 'controller').args,
        '--ca-token-audience',
      );
      assert.equal(controllerAudience, args.length === 0 ? 'ferry-ca' : 'mesh-ca.corp');
      const zt = find(objs, 'DaemonSet', 'ferry-ztunnel');
      const wp = find(waypointObjects(objs).filled, 'Deployment', 'waypoint');
      for (const [w, name] of [
        [zt, 'ztunnel'],
        [wp, 'waypoint'],
      ] as const) {
        const volume = podSpec(w).volumes?.find((v) => v.name === 'ca-token') as unknown as {
          projected: { sources: { serviceAccountToken: { audience: string; path: string } }[] };
        };
        const token = volume.projected.sources[0]?.serviceAccountToken;
        assert.equal(token?.audience, controllerAudience, name);
        const mount = container(w, name).volumeMounts?.find((m) => m.name === 'ca-token');
        assert.equal(flag(container(w, name).args, '--ca-token-file'), `${mount?.mountPath}/${token?.path}`, name);
      }
    }
  });

  test('addresses: ztunnels and waypoints dial the controller Service ports that exist', () => {
    const svc = find(objects, 'Service', 'ferry-controller');
    const ports = new Map((svc.spec as { ports: { name: string; port: number }[] }).ports.map((p) => [p.name, p.port]));
    assert.equal(ports.get('grpc-xds'), 15010);
    assert.equal(ports.get('grpc-ca'), 15012);
    for (const [w, name] of [
      [ztunnel, 'ztunnel'],
      [waypoint, 'waypoint'],
    ] as const) {
      const args = container(w, name).args;
      assert.equal(flag(args, '--xds-address'), `ferry-controller.${NAMESPACE}.svc:15010`, name);
      assert.equal(flag(args, '--ca-address'), `ferry-controller.${NAMESPACE}.svc:15012`, name);
    }
    const cArgs = container(controller, 'controller').args;
    assert.equal(flag(cArgs, '--tls-dns-names')?.split(',')[0], `ferry-controller.${NAMESPACE}.svc`);
  });

  test('images: pinned to the chart appVersion (never latest), or by digest', () => {
    const appVersion = /^appVersion: "(.+)"$/m.exec(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'))?.[1];
    for (const [w, name] of [
      [controller, 'controller'],
      [ztunnel, 'ztunnel'],
      [waypoint, 'waypoint'],
    ] as const) {
      assert.equal(container(w, name).image, `ferry/ferry:${appVersion}`);
    }
    const digest = `sha256:${'b'.repeat(64)}`;
    const pinned = render(['--set', `image.digest=${digest}`]);
    assert.equal(container(find(pinned, 'DaemonSet', 'ferry-ztunnel'), 'ztunnel').image, `ferry/ferry@${digest}`);
  });

  test('trust domain and cacerts plug-in reach every process', () => {
    const objs = render(['--set', 'trustDomain=corp.example.com', '--set', 'ca.cacertsSecret=cacerts']);
    const c = find(objs, 'Deployment', 'ferry-controller');
    const args = container(c, 'controller').args;
    assert.equal(flag(args, '--ca-dir'), '/etc/cacerts');
    assert.equal(flag(args, '--ca-secret'), undefined);
    const volume = podSpec(c).volumes?.find((v) => v.name === 'cacerts') as unknown as {
      secret: { secretName: string };
    };
    assert.equal(volume.secret.secretName, 'cacerts');
    for (const [w, name] of [
      [c, 'controller'],
      [find(objs, 'DaemonSet', 'ferry-ztunnel'), 'ztunnel'],
      [find(waypointObjects(objs).filled, 'Deployment', 'waypoint'), 'waypoint'],
    ] as const) {
      assert.equal(flag(container(w, name).args, '--trust-domain'), 'corp.example.com', name);
    }
  });

  test('waypoint objects: named like the Gateway, owned by it, HPA-friendly, not captured', () => {
    const { filled } = waypointObjects(objects);
    for (const o of filled) {
      assert.equal(o.metadata.name, 'waypoint');
      assert.equal(o.metadata.namespace, 'shop');
      assert.deepEqual(o.metadata.ownerReferences, [
        {
          apiVersion: 'gateway.networking.k8s.io/v1',
          kind: 'Gateway',
          name: 'waypoint',
          uid: '0b3c9d7e-5d0c-4a59-9a8e-2f1c6b7d8e9f',
          controller: true,
        },
      ]);
    }
    const spec = podSpec(waypoint);
    assert.equal(spec.serviceAccountName, 'waypoint');
    assert.equal(spec.automountServiceAccountToken, false);
    const labels = (waypoint.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
      .labels;
    assert.equal(labels['istio.io/dataplane-mode'], 'none');
    assert.ok(container(waypoint, 'waypoint').securityContext?.capabilities?.drop?.includes('ALL'));
    const resources = (container(waypoint, 'waypoint') as unknown as { resources: { requests: { cpu: string } } })
      .resources;
    assert.ok(resources.requests.cpu, 'an HPA needs CPU requests');
  });

  test('ServiceMonitors select Services that expose http-monitoring', () => {
    assert.equal(
      objects.find((o) => o.kind === 'ServiceMonitor'),
      undefined,
    );
    const on = render(['--set', 'metrics.serviceMonitor.enabled=true']);
    const services = on.filter((o) => o.kind === 'Service');
    const monitors = on.filter((o) => o.kind === 'ServiceMonitor');
    assert.equal(monitors.length, 2);
    for (const m of monitors) {
      const sel = (m.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
      const hit = services.filter((s) =>
        Object.entries(sel).every(([k, v]) => (s.metadata.labels as Record<string, string> | undefined)?.[k] === v),
      );
      assert.equal(hit.length, 1, `${m.metadata.name} selects ${hit.length} Services`);
      const [service] = hit;
      assert.ok(service);
      const ports = (service.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
      assert.ok(ports.includes('http-monitoring'), m.metadata.name);
    }
  });
});

describe('CRDs: Ferry example policies are accepted by the CRD schemas, malformed ones refused', () => {
  const crds = render().filter((o) => o.kind === 'CustomResourceDefinition');
  const ajv = new Ajv({ strict: false, allErrors: true });
  const validators = new Map<string, ReturnType<typeof ajv.compile>>();
  for (const crd of crds) {
    const spec = crd.spec as {
      names: { kind: string };
      versions: { name: string; schema: { openAPIV3Schema: object } }[];
    };
    for (const v of spec.versions) {
      validators.set(`security.istio.io/${v.name}/${spec.names.kind}`, ajv.compile(v.schema.openAPIV3Schema));
    }
  }

  test('examples/ and fixtures validate', () => {
    const repo = join(CHART_DIR, '..', '..');
    const files = [
      'examples/demo/policies/deny-client.yaml',
      'examples/demo/policies/strict-mtls.yaml',
      'examples/waypoint/variants/authz-allow.yaml',
      'examples/waypoint/routes.yaml',
      'test/fixtures/controller/demo-in.yaml',
    ];
    let checked = 0;
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(join(repo, file), 'utf8'))) {
        const o = doc.toJS() as KubeObject | null;
        if (o === null || !o.apiVersion.startsWith('security.istio.io/')) continue;
        const validate = validators.get(`${o.apiVersion}/${o.kind}`);
        assert.ok(validate, `no CRD serves ${o.apiVersion} ${o.kind}`);
        assert.ok(validate(o), `${file} ${o.kind} ${o.metadata.name}: ${JSON.stringify(validate.errors)}`);
        checked++;
      }
    }
    assert.ok(checked >= 4, `only ${checked} policies found`);
  });

  test('a bad action, mode or rule shape is refused', () => {
    const ap = validators.get('security.istio.io/v1/AuthorizationPolicy');
    const pa = validators.get('security.istio.io/v1/PeerAuthentication');
    assert.ok(ap && pa);
    const meta = { name: 'x', namespace: 'y' };
    const apv = 'security.istio.io/v1';
    assert.equal(
      ap({ apiVersion: apv, kind: 'AuthorizationPolicy', metadata: meta, spec: { action: 'PERMIT' } }),
      false,
    );
    assert.equal(
      ap({ apiVersion: apv, kind: 'AuthorizationPolicy', metadata: meta, spec: { rules: [{ when: [{}] }] } }),
      false,
    );
    assert.equal(
      ap({ apiVersion: apv, kind: 'AuthorizationPolicy', metadata: meta, spec: { rules: { from: [] } } }),
      false,
    );
    assert.equal(
      pa({ apiVersion: apv, kind: 'PeerAuthentication', metadata: meta, spec: { mtls: { mode: 'ON' } } }),
      false,
    );
    assert.equal(
      pa({ apiVersion: apv, kind: 'PeerAuthentication', metadata: meta, spec: { mtls: { mode: 'STRICT' } } }),
      true,
    );
  });
});
