// Workloads, Services, PeerAuthentication and waypoints: enrollment rules, Deployment expansion and naming,
// telemetry names, named target ports, mTLS precedence (oldest wins), use-waypoint resolution.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ns, translateYaml } from '../../helpers/controller-fixtures.ts';

const pod = (name: string, labels = '{}', extra = '', namespace = 'demo') =>
  `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: ${namespace}, labels: ${labels}${extra}}\nspec:\n  containers: [{name: app, image: x, ports: [{name: http, containerPort: 8080}]}]\n---\n`;

const protocolOf = (yaml: string, name: string, settings: { requireRedirectionAnnotation?: boolean } = {}) =>
  translateYaml(yaml, settings).config.workloads.find((w) => w.name === name)?.protocol;

test('enrollment: namespace label, pod label, pod opt-out, sidecar pods never', () => {
  const amb = ns('demo', '{istio.io/dataplane-mode: ambient}');
  assert.equal(protocolOf(amb + pod('a'), 'a'), 'HBONE');
  assert.equal(protocolOf(amb + pod('a', '{istio.io/dataplane-mode: none}'), 'a'), 'TCP');
  assert.equal(protocolOf(ns('demo') + pod('a', '{istio.io/dataplane-mode: ambient}'), 'a'), 'HBONE');
  assert.equal(protocolOf(ns('demo') + pod('a'), 'a'), 'TCP');
  assert.equal(
    protocolOf(
      amb + pod('a', '{istio.io/dataplane-mode: ambient}', ', annotations: {sidecar.istio.io/status: "{}"}'),
      'a',
    ),
    'TCP',
  );
  const withProxy = `${amb}apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: demo}\nspec: {containers: [{name: app}, {name: istio-proxy}]}\n`;
  assert.equal(protocolOf(withProxy, 'a'), 'TCP');
  // The rule the ztunnel's node agent captures by (src/mesh/ambient-enrollment.ts): hostNetwork pods never,
  // and a pod label other than ambient/none does not opt a pod of an ambient namespace out.
  const hostNet = `${amb}apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: demo}\nspec: {hostNetwork: true, containers: [{name: app}]}\n`;
  assert.equal(protocolOf(hostNet, 'a'), 'TCP');
  assert.equal(protocolOf(amb + pod('a', '{istio.io/dataplane-mode: other}'), 'a'), 'HBONE');
});

test('pods from a Kubernetes API: HBONE only once the node agent annotated them captured (redirection enabled)', () => {
  const amb = ns('demo', '{istio.io/dataplane-mode: ambient}');
  const annotated = (value: string) => `, annotations: {ambient.istio.io/redirection: ${value}}`;
  const api = { requireRedirectionAnnotation: true };
  // Labelled but not captured yet: peers keep plain TCP, which the pod accepts without a ztunnel.
  assert.equal(protocolOf(amb + pod('a'), 'a', api), 'TCP');
  assert.equal(protocolOf(amb + pod('a', '{}', annotated('enabled')), 'a', api), 'HBONE');
  // Being let go (the node agent set disabled before it unenrolls): TCP while the pod is still captured.
  assert.equal(protocolOf(amb + pod('a', '{}', annotated('disabled')), 'a', api), 'TCP');
  // The annotation never makes a pod ambient: the rule still decides (unlabelled, opted out, sidecar).
  assert.equal(protocolOf(ns('demo') + pod('a', '{}', annotated('enabled')), 'a', api), 'TCP');
  assert.equal(protocolOf(amb + pod('a', '{istio.io/dataplane-mode: none}', annotated('enabled')), 'a', api), 'TCP');
  // Pods from manifests (the file-based local cluster) ignore the annotation: its controller gates HBONE itself.
  assert.equal(protocolOf(amb + pod('a'), 'a'), 'HBONE');
  assert.equal(protocolOf(amb + pod('a', '{}', annotated('disabled')), 'a'), 'HBONE');
});

test('deployment expands to <name>-<index> pods with template labels; uid, identity, telemetry names', () => {
  const r = translateYaml(
    `${ns('demo')}apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app.kubernetes.io/name: web}}\n  template:\n    metadata: {labels: {app.kubernetes.io/name: web, app.kubernetes.io/version: "1.2"}}\n    spec: {serviceAccountName: default, containers: [{name: app}]}\n`,
  );
  assert.deepEqual(
    r.config.workloads.map((w) => w.uid),
    ['Kubernetes//Pod/demo/web-0', 'Kubernetes//Pod/demo/web-1', 'Kubernetes//Pod/demo/web-2'],
  );
  const w = r.config.workloads[0]!;
  assert.deepEqual(
    [w.workloadName, w.workloadType, w.canonicalName, w.canonicalRevision, w.serviceAccount, w.trustDomain, w.node],
    ['web', 'deployment', 'web', '1.2', 'default', 'cluster.local', 'node-a'],
  );
  assert.deepEqual(r.diagnostics, []);
});

test('deployment replica name colliding with a Pod: the Pod wins, diagnostic on the Deployment', () => {
  const r = translateYaml(
    `${ns('demo')}${pod('web-0', '{app: web}')}apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\nspec: {replicas: 1, selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {containers: [{name: c}]}}}\n`,
  );
  assert.deepEqual(
    r.config.workloads.map((w) => [w.name, w.workloadType]),
    [['web-0', 'pod']],
  );
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.object]),
    [['FERRY_TRANSLATE_CONFLICT', 'Deployment/demo/web']],
  );
});

test('services: named targetPort resolves per pod; unresolvable port skipped with a diagnostic; headless has no VIP', () => {
  const other = `apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: demo, labels: {app: x}}\nspec: {containers: [{name: c, ports: [{name: web, containerPort: 9000}]}]}\n---\n`;
  const svc = `apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: demo}\nspec: {selector: {app: x}, ports: [{name: a, port: 80, targetPort: http}, {name: b, port: 81}]}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: h, namespace: demo}\nspec: {clusterIP: None, selector: {app: x}, ports: [{port: 5000, targetPort: 5001}]}\n`;
  const r = translateYaml(ns('demo') + pod('a', '{app: x}') + other + svc);
  const a = r.config.workloads.find((w) => w.name === 'a')!;
  const b = r.config.workloads.find((w) => w.name === 'b')!;
  assert.deepEqual(
    [...a.services.get('demo/s.demo.svc.cluster.local')!],
    [
      [80, 8080],
      [81, 81],
    ],
  );
  assert.deepEqual([...b.services.get('demo/s.demo.svc.cluster.local')!], [[81, 81]]);
  assert.deepEqual([...b.services.get('demo/h.demo.svc.cluster.local')!], [[5000, 5001]]);
  const s = r.config.services.find((x) => x.name === 's')!;
  assert.deepEqual(s.ports, [
    { servicePort: 80, targetPort: 0, name: 'a' },
    { servicePort: 81, targetPort: 81, name: 'b' },
  ]);
  assert.deepEqual(r.config.services.find((x) => x.name === 'h')!.vips, []);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.object, d.field]),
    [['FERRY_TRANSLATE_UNRESOLVED', 'Service/demo/s', 'spec.ports[0].targetPort']],
  );
});

const pa = (name: string, namespace: string, spec: string, ts = '') =>
  `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: ${name}, namespace: ${namespace}${ts}}\nspec: ${spec}\n---\n`;
const policiesOf = (yaml: string, name = 'a') =>
  translateYaml(yaml).config.workloads.find((w) => w.name === name)?.authorizationPolicies;
const STRICT = 'istio-system/istio_converted_static_strict';

test('PeerAuthentication precedence: mesh → namespace → workload; UNSET inherits; DISABLE acts as PERMISSIVE', () => {
  const base = ns('demo') + pod('a', '{app: a}');
  assert.deepEqual(policiesOf(base), []);
  assert.deepEqual(policiesOf(base + pa('m', 'istio-system', '{mtls: {mode: STRICT}}')), [STRICT]);
  assert.deepEqual(
    policiesOf(
      base + pa('m', 'istio-system', '{mtls: {mode: STRICT}}') + pa('n', 'demo', '{mtls: {mode: PERMISSIVE}}'),
    ),
    [],
  );
  assert.deepEqual(
    policiesOf(
      base +
        pa('n', 'demo', '{mtls: {mode: PERMISSIVE}}') +
        pa('w', 'demo', '{selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}}'),
    ),
    [STRICT],
  );
  assert.deepEqual(
    policiesOf(
      base + pa('n', 'demo', '{mtls: {mode: STRICT}}') + pa('w', 'demo', '{selector: {matchLabels: {app: a}}}'),
    ),
    [STRICT],
  );
  const r = translateYaml(base + pa('n', 'demo', '{mtls: {mode: DISABLE}}'));
  assert.deepEqual(r.config.workloads[0]!.authorizationPolicies, []);
  assert.deepEqual(
    r.diagnostics.map((d) => d.code),
    ['FERRY_TRANSLATE_UNSUPPORTED'],
  );
  // STRICT emits the static policy once, however many workloads reference it.
  const two = translateYaml(base + pod('b') + pa('n', 'demo', '{mtls: {mode: STRICT}}'));
  assert.deepEqual(
    two.config.policies.map((p) => `${p.namespace}/${p.name}`),
    [STRICT],
  );
});

test('PeerAuthentication: oldest namespace-wide policy wins (creationTimestamp, then order)', () => {
  const base = ns('demo') + pod('a');
  const older = pa('z-old', 'demo', '{mtls: {mode: STRICT}}', ', creationTimestamp: "2024-01-01T00:00:00Z"');
  const newer = pa('a-new', 'demo', '{mtls: {mode: PERMISSIVE}}', ', creationTimestamp: "2025-01-01T00:00:00Z"');
  const r = translateYaml(base + newer + older);
  assert.deepEqual(r.config.workloads[0]!.authorizationPolicies, [STRICT]);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.object]),
    [['FERRY_TRANSLATE_CONFLICT', 'PeerAuthentication/demo/a-new']],
  );
});

test('PeerAuthentication port-level mTLS → converted DENY policy replacing the static one', () => {
  const r = translateYaml(
    ns('demo') +
      pod('a', '{app: a}') +
      pa(
        'w',
        'demo',
        '{selector: {matchLabels: {app: a}}, mtls: {mode: STRICT}, portLevelMtls: {"9090": {mode: PERMISSIVE}}}',
      ),
  );
  assert.deepEqual(r.config.workloads[0]!.authorizationPolicies, ['demo/converted_peer_authentication_w']);
  assert.deepEqual(r.config.policies[0]!.rules, [
    [[{ ...r.config.policies[0]!.rules[0]![0]![0]!, notDestinationPorts: [9090] }]],
  ]);
});

const gw = (name: string, forLabel = '', klass = 'ferry-waypoint') =>
  `apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: ${name}, namespace: demo${forLabel === '' ? '' : `, labels: {istio.io/waypoint-for: ${forLabel}}`}}\nspec: {gatewayClassName: ${klass}, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}\n---\n`;
const svcDoc = (labels = '{}') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: demo, labels: ${labels}}\nspec: {selector: {app: a}, ports: [{port: 80}]}\n---\n`;

test('waypoints: service label beats namespace label, none opts out; workload waypoints need for=workload|all', () => {
  const wpAddr = (name: string) => ({
    destination: { kind: 'hostname', namespace: 'demo', hostname: `${name}.demo.svc.cluster.local` },
    hboneMtlsPort: 15008,
  });
  const nsWp = ns('demo', '{istio.io/use-waypoint: wp1}');
  let r = translateYaml(nsWp + gw('wp1') + gw('wp2') + svcDoc('{istio.io/use-waypoint: wp2}') + pod('a', '{app: a}'));
  assert.deepEqual(r.config.services[0]!.waypoint, wpAddr('wp2'));
  assert.equal(r.config.workloads[0]!.waypoint, null); // wp1 is a service waypoint
  assert.deepEqual(
    r.waypoints.map((w) => [w.name, w.for]),
    [
      ['wp1', 'service'],
      ['wp2', 'service'],
    ],
  );
  assert.deepEqual(r.diagnostics, []);
  r = translateYaml(nsWp + gw('wp1', 'all') + svcDoc('{istio.io/use-waypoint: none}') + pod('a', '{app: a}'));
  assert.equal(r.config.services[0]!.waypoint, null);
  assert.deepEqual(r.config.workloads[0]!.waypoint, wpAddr('wp1'));
  r = translateYaml(nsWp + gw('wp1', 'all') + svcDoc() + pod('a', '{istio.io/use-waypoint: none}'));
  assert.deepEqual(r.config.services[0]!.waypoint, wpAddr('wp1'));
  assert.equal(r.config.workloads[0]!.waypoint, null);
});

test('waypoints: missing Gateway, wrong class and a bad listener are reported; the service keeps the address', () => {
  let r = translateYaml(ns('demo') + svcDoc('{istio.io/use-waypoint: nope}'));
  assert.equal(r.config.services[0]!.waypoint?.destination.kind, 'hostname');
  assert.deepEqual(
    r.diagnostics.map((d) => [d.code, d.object, d.field]),
    [['FERRY_TRANSLATE_UNRESOLVED', 'Service/demo/s', 'metadata.labels["istio.io/use-waypoint"]']],
  );
  r = translateYaml(ns('demo') + gw('wp', '', 'istio') + svcDoc('{istio.io/use-waypoint: wp}'));
  assert.match(r.diagnostics[0]!.message, /class istio, not ferry-waypoint/);
  r = translateYaml(
    `${ns('demo')}apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, namespace: demo}\nspec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15009, protocol: HBONE}]}\n`,
  );
  assert.deepEqual(r.waypoints, []);
  assert.deepEqual(
    r.diagnostics.map((d) => [d.severity, d.field]),
    [['error', 'spec.listeners[0]']],
  );
});
