// One decoded YAML/JSON document → one validated K8sObject, or diagnostics naming the object and field.
// Checks what Kubernetes' API server would refuse (known kind/apiVersion, DNS names, label syntax, selectors,
// ports) and keeps only the fields the mesh uses. Istio and Gateway API kinds: k8s-parse-istio.ts. Pure.
import { canonicalIp } from '../../mesh/ip-addr.ts';
import {
  parseEndpointSlice,
  parseGatewayClass,
  parseNode,
  parsePodStatus,
  parseServerMeta,
} from './k8s-parse-cluster.ts';
import {
  parseAuthorizationPolicy,
  parseGateway,
  parsePeerAuthentication,
  parseReferenceGrant,
} from './k8s-parse-istio.ts';
import { get, isObj, type Obj, ObjectReader, portNameProblem, q } from './k8s-reader.ts';
import { matchesLabelSelector } from './label-match.ts';
import type {
  Container,
  ContainerPort,
  DeploymentObject,
  Diagnostic,
  K8sKind,
  K8sObject,
  ObjectMeta,
  ObjectOrigin,
  PodSpec,
  ServiceObject,
  ServicePortSpec,
  ServiceType,
} from './types.ts';
import { objectRef } from './types.ts';

export interface ParseOptions {
  readonly origin: ObjectOrigin;
  /** Order of arrival, for "oldest wins" when no creationTimestamp is given. */
  readonly sequence: number;
  /** Namespace of objects whose metadata has none (kubectl's default: "default"). */
  readonly defaultNamespace: string;
}

export interface ParsedObject {
  /** null when the object has an error; it is then excluded, the rest still applies. */
  readonly object: K8sObject | null;
  readonly diagnostics: readonly Diagnostic[];
}

const ISTIO_SECURITY = ['security.istio.io/v1', 'security.istio.io/v1beta1'];
const GATEWAY_API = ['gateway.networking.k8s.io/v1', 'gateway.networking.k8s.io/v1beta1'];
// TCPRoute is experimental (v1alpha2); Gateway API v1.6 also serves it as v1.
const GATEWAY_API_TCP = ['gateway.networking.k8s.io/v1alpha2', 'gateway.networking.k8s.io/v1'];
const KINDS: ReadonlyMap<string, readonly string[]> = new Map<K8sKind, readonly string[]>([
  ['Namespace', ['v1']],
  ['Pod', ['v1']],
  ['Service', ['v1']],
  ['ServiceAccount', ['v1']],
  ['Deployment', ['apps/v1']],
  ['AuthorizationPolicy', ISTIO_SECURITY],
  ['PeerAuthentication', ISTIO_SECURITY],
  ['Gateway', GATEWAY_API],
  ['HTTPRoute', GATEWAY_API],
  ['GRPCRoute', ['gateway.networking.k8s.io/v1']],
  ['TCPRoute', GATEWAY_API_TCP],
  ['ReferenceGrant', GATEWAY_API],
  ['GatewayClass', GATEWAY_API],
  ['Node', ['v1']],
  ['EndpointSlice', ['discovery.k8s.io/v1']],
]);
const MAX_REPLICAS = 1000; // one machine runs every pod; more is a typo, not a plan
const SERVICE_TYPES: readonly ServiceType[] = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];

export function isKnownKind(kind: string): kind is K8sKind {
  return KINDS.has(kind);
}

/** Validates one document. Never throws; an invalid object yields `object: null` and ≥ 1 error. */
export function parseK8sObject(value: unknown, opts: ParseOptions): ParsedObject {
  const r = new ObjectReader('', opts.origin);
  const object = isObj(value)
    ? parseWith(r, value, opts)
    : r.fail('FERRY_MANIFEST_INVALID_FIELD', '', `document is not a Kubernetes object (got ${shapeOf(value)})`);
  return { object: r.failed ? null : object, diagnostics: r.diagnostics };
}

// What a document that is not an object is, without its text: a file that is not a manifest (a key, a
// password file) must never be echoed into the reply or `ferry status` (docs/operations.md, "Admin endpoints").
function shapeOf(value: unknown): string {
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  return Array.isArray(value) ? 'a list' : value === null ? 'null' : `a ${typeof value}`;
}

function parseWith(r: ObjectReader, doc: Obj, opts: ParseOptions): K8sObject | null {
  const kind = get(doc, 'kind');
  const apiVersion = get(doc, 'apiVersion');
  const rawMeta = isObj(get(doc, 'metadata')) ? (get(doc, 'metadata') as Obj) : {};
  const rawName = typeof get(rawMeta, 'name') === 'string' ? (get(rawMeta, 'name') as string) : '?';
  const rawNs = get(rawMeta, 'namespace');
  const nsGuess =
    kind === 'Namespace' || kind === 'Node' || kind === 'GatewayClass'
      ? ''
      : typeof rawNs === 'string'
        ? rawNs
        : opts.defaultNamespace;
  r.identify(objectRef(typeof kind === 'string' ? kind : '?', nsGuess, rawName));
  if (typeof kind !== 'string' || kind === '') return r.fail('FERRY_MANIFEST_UNKNOWN_KIND', 'kind', 'missing kind');
  const versions = KINDS.get(kind);
  if (versions === undefined || !isKnownKind(kind)) {
    return r.fail(
      'FERRY_MANIFEST_UNKNOWN_KIND',
      'kind',
      `unknown kind ${q(kind)} (Ferry reads ${[...KINDS.keys()].join(', ')})`,
    );
  }
  if (typeof apiVersion !== 'string' || !versions.includes(apiVersion)) {
    return r.fail(
      'FERRY_MANIFEST_UNKNOWN_KIND',
      'apiVersion',
      `${kind} must have apiVersion ${versions.join(' or ')}, got ${q(apiVersion)}`,
    );
  }
  const metadata = parseMeta(r, kind, get(doc, 'metadata'), opts);
  if (metadata === null) return null;
  const spec = get(doc, 'spec');
  const base = { apiVersion, metadata, origin: opts.origin };
  switch (kind) {
    case 'Namespace':
      return { kind, ...base };
    case 'ServiceAccount':
      return { kind, ...base };
    case 'Pod': {
      const s = r.map(spec, 'spec');
      const podSpec = s === null ? null : parsePodSpec(r, s, 'spec');
      const status = parsePodStatus(r, get(doc, 'status'));
      if (podSpec === null || status === null) return null;
      return status === undefined ? { kind, ...base, spec: podSpec } : { kind, ...base, spec: podSpec, status };
    }
    case 'Node':
      return parseNode(r, { kind, ...base }, get(doc, 'status'));
    case 'EndpointSlice':
      return parseEndpointSlice(r, { kind, ...base }, doc);
    case 'GatewayClass':
      return parseGatewayClass(r, { kind, ...base }, spec);
    case 'Deployment':
      return parseDeployment(r, { kind, ...base }, spec);
    case 'Service':
      return parseService(r, { kind, ...base }, spec);
    case 'AuthorizationPolicy':
      return parseAuthorizationPolicy(r, { kind, ...base }, spec);
    case 'PeerAuthentication':
      return parsePeerAuthentication(r, { kind, ...base }, spec);
    case 'Gateway':
      return parseGateway(r, { kind, ...base }, spec);
    case 'HTTPRoute':
    case 'GRPCRoute':
    case 'TCPRoute':
      return { kind, ...base, spec: spec ?? null };
    case 'ReferenceGrant':
      return parseReferenceGrant(r, { kind, ...base }, spec);
  }
}

function parseMeta(r: ObjectReader, kind: K8sKind, v: unknown, opts: ParseOptions): ObjectMeta | null {
  const m = r.map(v, 'metadata');
  if (m === null) return null;
  // Namespaces and Services become DNS names of their own (svc hostnames), so they are labels, not subdomains.
  const rule = kind === 'Namespace' ? 'dns-label' : kind === 'Service' ? 'dns-1035-label' : 'dns-subdomain';
  const clusterScoped = kind === 'Namespace' || kind === 'Node' || kind === 'GatewayClass';
  const name = r.name(get(m, 'name'), 'metadata.name', rule);
  const rawNs = get(m, 'namespace');
  const namespace = clusterScoped
    ? ''
    : rawNs === undefined || rawNs === null
      ? opts.defaultNamespace
      : r.name(rawNs, 'metadata.namespace', 'dns-label');
  const labels = r.labels(get(m, 'labels'), 'metadata.labels', 'labels');
  const annotations = r.labels(get(m, 'annotations'), 'metadata.annotations', 'annotations');
  let creationTimestampMs: number | null = null;
  const ts = get(m, 'creationTimestamp');
  if (ts !== undefined && ts !== null) {
    const parsed =
      typeof ts === 'string'
        ? Date.parse(ts)
        : typeof ts === 'object' && ts instanceof Date
          ? ts.getTime()
          : Number.NaN;
    if (Number.isNaN(parsed))
      r.fail('FERRY_MANIFEST_INVALID_FIELD', 'metadata.creationTimestamp', `not a timestamp: ${q(ts)}`);
    else creationTimestampMs = parsed;
  }
  const server = parseServerMeta(r, m);
  if (name === null || namespace === null || labels === null || annotations === null || server === null) return null;
  return { name, namespace, labels, annotations, creationTimestampMs, sequence: opts.sequence, ...server };
}

export function parsePodSpec(r: ObjectReader, s: Obj, field: string): PodSpec | null {
  const saRaw = get(s, 'serviceAccountName') ?? get(s, 'serviceAccount');
  const saField =
    get(s, 'serviceAccountName') === undefined ? `${field}.serviceAccount` : `${field}.serviceAccountName`;
  const serviceAccountName = saRaw === undefined || saRaw === null ? null : r.name(saRaw, saField, 'dns-subdomain');
  const items = r.list(get(s, 'containers'), `${field}.containers`);
  if (items === null || (saRaw !== undefined && saRaw !== null && serviceAccountName === null)) return null;
  if (items.length === 0)
    return r.fail('FERRY_MANIFEST_INVALID_FIELD', `${field}.containers`, 'a pod needs at least one container');
  const containers: Container[] = [];
  const names = new Set<string>();
  const portNames = new Set<string>();
  let ok = true;
  items.forEach((item, i) => {
    const at = `${field}.containers[${i}]`;
    const c = parseContainer(r, item, at, portNames);
    if (c === null) ok = false;
    else if (names.has(c.name))
      ok = r.fail('FERRY_MANIFEST_DUPLICATE', `${at}.name`, `duplicate container name ${q(c.name)}`) ?? false;
    else {
      names.add(c.name);
      containers.push(c);
    }
  });
  // spec.nodeName pins a pod to a node in the local cluster; absent (not null) when unset.
  const nodeName = get(s, 'nodeName');
  if (!ok) return null;
  const spec: PodSpec =
    typeof nodeName === 'string' && nodeName !== ''
      ? { serviceAccountName, containers, nodeName }
      : { serviceAccountName, containers };
  // hostNetwork pods are never ambient (src/mesh/ambient-enrollment.ts); absent when false.
  return get(s, 'hostNetwork') === true ? { ...spec, hostNetwork: true } : spec;
}

function parseContainer(r: ObjectReader, v: unknown, field: string, portNames: Set<string>): Container | null {
  const c = r.map(v, field);
  if (c === null) return null;
  const name = r.name(get(c, 'name'), `${field}.name`, 'dns-label');
  const image = r.optString(get(c, 'image'), `${field}.image`);
  const command = r.stringList(get(c, 'command'), `${field}.command`);
  const args = r.stringList(get(c, 'args'), `${field}.args`);
  const items = r.list(get(c, 'ports'), `${field}.ports`);
  const ports: ContainerPort[] = [];
  let ok = name !== null && image !== null && command !== null && args !== null && items !== null;
  (items ?? []).forEach((item, i) => {
    const at = `${field}.ports[${i}]`;
    const p = r.map(item, at);
    if (p === null) {
      ok = false;
      return;
    }
    const containerPort = r.port(get(p, 'containerPort'), `${at}.containerPort`);
    const portName = r.optString(get(p, 'name'), `${at}.name`);
    const protocol = r.protocol(get(p, 'protocol'), `${at}.protocol`);
    let nameOk = portName !== null;
    if (typeof portName === 'string') {
      const problem =
        portNameProblem(portName) ?? (portNames.has(portName) ? `duplicate port name ${q(portName)}` : null);
      if (problem !== null) nameOk = r.fail('FERRY_MANIFEST_INVALID_PORT', `${at}.name`, problem) ?? false;
      portNames.add(portName);
    }
    if (containerPort === null || protocol === null || !nameOk) ok = false;
    else ports.push({ name: portName ?? null, containerPort, protocol });
  });
  if (!ok || name === null || command === null || args === null) return null;
  return { name, image: image ?? '', command, args, ports };
}

function parseDeployment(r: ObjectReader, base: Omit<DeploymentObject, 'spec'>, v: unknown): DeploymentObject | null {
  const s = r.map(v, 'spec');
  if (s === null) return null;
  const rawReplicas = get(s, 'replicas');
  const replicas =
    rawReplicas === undefined || rawReplicas === null
      ? 1
      : r.integer(rawReplicas, 'spec.replicas', 0, MAX_REPLICAS, 'FERRY_MANIFEST_INVALID_FIELD');
  const rawSelector = get(s, 'selector');
  const selector =
    rawSelector === undefined
      ? r.fail('FERRY_MANIFEST_INVALID_SELECTOR', 'spec.selector', 'apps/v1 Deployment needs a selector')
      : r.labelSelector(rawSelector, 'spec.selector');
  const t = r.map(get(s, 'template'), 'spec.template');
  const tm = t === null ? null : r.optMap(get(t, 'metadata'), 'spec.template.metadata');
  const labels = tm === null ? null : r.labels(get(tm, 'labels'), 'spec.template.metadata.labels', 'labels');
  const annotations =
    tm === null ? null : r.labels(get(tm, 'annotations'), 'spec.template.metadata.annotations', 'annotations');
  const ts = t === null ? null : r.map(get(t, 'spec'), 'spec.template.spec');
  const podSpec = ts === null ? null : parsePodSpec(r, ts, 'spec.template.spec');
  if (replicas === null || selector === null || labels === null || annotations === null || podSpec === null)
    return null;
  if (selector.matchLabels.size === 0 && selector.matchExpressions.length === 0) {
    return r.fail('FERRY_MANIFEST_INVALID_SELECTOR', 'spec.selector', 'an empty selector is invalid for a Deployment');
  }
  if (!matchesLabelSelector(selector, labels)) {
    return r.fail('FERRY_MANIFEST_INVALID_SELECTOR', 'spec.selector', 'selector does not match the template labels');
  }
  return { ...base, spec: { replicas, selector, template: { labels, annotations, spec: podSpec } } };
}

function parseService(r: ObjectReader, base: Omit<ServiceObject, 'spec'>, v: unknown): ServiceObject | null {
  const s = r.map(v, 'spec');
  if (s === null) return null;
  const rawType = get(s, 'type') ?? 'ClusterIP';
  const type =
    SERVICE_TYPES.find((t) => t === rawType) ??
    r.fail(
      'FERRY_MANIFEST_INVALID_FIELD',
      'spec.type',
      `must be one of ${SERVICE_TYPES.join(', ')}, got ${q(rawType)}`,
    );
  const rawIp = get(s, 'clusterIP');
  let clusterIP: string | null = null;
  if (rawIp !== undefined && rawIp !== null && rawIp !== '') {
    clusterIP = rawIp === 'None' ? 'None' : typeof rawIp === 'string' ? canonicalIp(rawIp) : null;
    if (clusterIP === null)
      r.fail('FERRY_MANIFEST_INVALID_FIELD', 'spec.clusterIP', `must be an IP address or "None", got ${q(rawIp)}`);
  }
  const rawSelector = get(s, 'selector');
  const selector =
    rawSelector === undefined || rawSelector === null ? null : r.labels(rawSelector, 'spec.selector', 'selector');
  const items = r.list(get(s, 'ports'), 'spec.ports');
  const ports: ServicePortSpec[] = [];
  const names = new Set<string>();
  let ok = type !== null && items !== null && (selector !== null || rawSelector === undefined || rawSelector === null);
  (items ?? []).forEach((item, i) => {
    const p = parseServicePort(r, item, `spec.ports[${i}]`, (items ?? []).length > 1, names);
    if (p === null) ok = false;
    else ports.push(p);
  });
  if (!ok || type === null || (rawIp !== undefined && rawIp !== null && rawIp !== '' && clusterIP === null))
    return null;
  return { ...base, spec: { type, clusterIP, selector, ports } };
}

function parseServicePort(
  r: ObjectReader,
  v: unknown,
  field: string,
  named: boolean,
  names: Set<string>,
): ServicePortSpec | null {
  const p = r.map(v, field);
  if (p === null) return null;
  const port = r.port(get(p, 'port'), `${field}.port`);
  const protocol = r.protocol(get(p, 'protocol'), `${field}.protocol`);
  const name = r.optString(get(p, 'name'), `${field}.name`);
  if (name === undefined && named)
    r.fail('FERRY_MANIFEST_INVALID_PORT', `${field}.name`, 'a Service with several ports must name each one');
  if (typeof name === 'string') {
    const problem =
      name.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)
        ? `bad port name ${q(name)}`
        : names.has(name)
          ? `duplicate port name ${q(name)}`
          : null;
    if (problem !== null) r.fail('FERRY_MANIFEST_INVALID_PORT', `${field}.name`, problem);
    names.add(name);
  }
  const rawTarget = get(p, 'targetPort');
  let targetPort: number | string | null = port;
  if (typeof rawTarget === 'string') {
    // IntOrString: a numeric string is the number (kubectl accepts "8080").
    if (/^[0-9]+$/.test(rawTarget)) targetPort = r.port(Number(rawTarget), `${field}.targetPort`);
    else {
      const problem = portNameProblem(rawTarget);
      targetPort = problem === null ? rawTarget : r.fail('FERRY_MANIFEST_INVALID_PORT', `${field}.targetPort`, problem);
    }
  } else if (rawTarget !== undefined && rawTarget !== null) {
    targetPort = r.port(rawTarget, `${field}.targetPort`);
  }
  const appProtocol = r.optString(get(p, 'appProtocol'), `${field}.appProtocol`);
  if (port === null || protocol === null || targetPort === null || name === null || (name === undefined && named))
    return null;
  return { name: name ?? null, port, targetPort, protocol, appProtocol: appProtocol ?? null };
}
