// Structural validation of the kinds only a Kubernetes API hands the controller (docs/architecture.md): Node,
// discovery.k8s.io/v1 EndpointSlice (the endpoints of Services without a selector), Gateway API GatewayClass,
// the status a kubelet writes on a Pod (podIP, phase), and the server-set metadata (uid, resourceVersion,
// generation) the status writer needs. Manifests may carry them too; they mean the same. Pure.
import { canonicalIp } from '../../mesh/ip-addr.ts';
import { get, isObj, type Obj, type ObjectReader, q } from './k8s-reader.ts';
import type {
  EndpointSliceEndpoint,
  EndpointSliceObject,
  EndpointSlicePort,
  GatewayClassObject,
  NodeAddress,
  NodeObject,
  PodObject,
} from './types.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const ADDRESS_TYPES = ['IPv4', 'IPv6', 'FQDN'] as const;
const MAX_GENERATION = Number.MAX_SAFE_INTEGER;

/** metadata.uid / resourceVersion / generation when present (strings, a non-negative integer). */
export function parseServerMeta(
  r: ObjectReader,
  m: Obj,
): { uid?: string; resourceVersion?: string; generation?: number } | null {
  const uid = r.optString(get(m, 'uid'), 'metadata.uid');
  const resourceVersion = r.optString(get(m, 'resourceVersion'), 'metadata.resourceVersion');
  const rawGen = get(m, 'generation');
  const generation =
    rawGen === undefined || rawGen === null
      ? undefined
      : r.integer(rawGen, 'metadata.generation', 0, MAX_GENERATION, 'FERRY_MANIFEST_INVALID_FIELD');
  if (uid === null || resourceVersion === null || generation === null) return null;
  return {
    ...(uid === undefined ? {} : { uid }),
    ...(resourceVersion === undefined ? {} : { resourceVersion }),
    ...(generation === undefined ? {} : { generation }),
  };
}

/** Pod status.podIP (canonical) and status.phase; undefined when the document has no status. */
export function parsePodStatus(r: ObjectReader, v: unknown): PodObject['status'] | null | undefined {
  if (v === undefined || v === null) return undefined;
  const s = r.map(v, 'status');
  if (s === null) return null;
  const rawIp = get(s, 'podIP');
  let podIP: string | null = null;
  if (rawIp !== undefined && rawIp !== null && rawIp !== '') {
    podIP = typeof rawIp === 'string' ? canonicalIp(rawIp) : null;
    if (podIP === null) return r.fail('FERRY_MANIFEST_INVALID_FIELD', 'status.podIP', `not an IP address: ${q(rawIp)}`);
  }
  const phase = r.optString(get(s, 'phase'), 'status.phase');
  if (phase === null) return null;
  return { podIP, phase: phase ?? null };
}

export function parseNode(r: ObjectReader, base: Omit<NodeObject, 'status'>, v: unknown): NodeObject | null {
  const s = r.optMap(v, 'status');
  if (s === null) return null;
  const addresses: NodeAddress[] = [];
  let ok = true;
  (r.list(get(s, 'addresses'), 'status.addresses') ?? []).forEach((item, i) => {
    const a = r.map(item, `status.addresses[${i}]`);
    const type = a === null ? null : r.string(get(a, 'type'), `status.addresses[${i}].type`);
    const address = a === null ? null : r.string(get(a, 'address'), `status.addresses[${i}].address`);
    if (type === null || address === null) ok = false;
    else addresses.push({ type, address });
  });
  return ok ? { ...base, status: { addresses } } : null;
}

export function parseGatewayClass(
  r: ObjectReader,
  base: Omit<GatewayClassObject, 'spec'>,
  v: unknown,
): GatewayClassObject | null {
  const s = r.map(v, 'spec');
  const controllerName = s === null ? null : r.string(get(s, 'controllerName'), 'spec.controllerName');
  return controllerName === null ? null : { ...base, spec: { controllerName } };
}

/** EndpointSlice: addressType, ports and endpoints sit at the top level of the object, not under spec. */
export function parseEndpointSlice(
  r: ObjectReader,
  base: Omit<EndpointSliceObject, 'spec'>,
  doc: Obj,
): EndpointSliceObject | null {
  const rawType = get(doc, 'addressType');
  const addressType = ADDRESS_TYPES.find((t) => t === rawType);
  if (addressType === undefined) {
    return r.fail('FERRY_MANIFEST_INVALID_FIELD', 'addressType', `must be IPv4, IPv6 or FQDN, got ${q(rawType)}`);
  }
  let ok = true;
  const ports: EndpointSlicePort[] = [];
  (r.list(get(doc, 'ports'), 'ports') ?? []).forEach((item, i) => {
    const at = `ports[${i}]`;
    const p = r.map(item, at);
    if (p === null) {
      ok = false;
      return;
    }
    const name = r.optString(get(p, 'name'), `${at}.name`);
    const rawPort = get(p, 'port');
    const port = rawPort === undefined || rawPort === null ? undefined : r.port(rawPort, `${at}.port`);
    const protocol = r.protocol(get(p, 'protocol'), `${at}.protocol`);
    if (name === null || port === null || protocol === null) ok = false;
    else ports.push({ name: name === undefined || name === '' ? null : name, port: port ?? null, protocol });
  });
  const endpoints: EndpointSliceEndpoint[] = [];
  (r.list(get(doc, 'endpoints'), 'endpoints') ?? []).forEach((item, i) => {
    const e = parseEndpoint(r, item, `endpoints[${i}]`, addressType);
    if (e === null) ok = false;
    else endpoints.push(e);
  });
  if (!ok) return null;
  const serviceName = base.metadata.labels.get(SERVICE_NAME_LABEL) ?? null;
  return { ...base, spec: { serviceName, addressType, ports, endpoints } };
}

function parseEndpoint(
  r: ObjectReader,
  v: unknown,
  at: string,
  addressType: EndpointSliceObject['spec']['addressType'],
): EndpointSliceEndpoint | null {
  const e = r.map(v, at);
  if (e === null) return null;
  const raw = r.stringList(get(e, 'addresses'), `${at}.addresses`);
  if (raw === null) return null;
  const addresses: string[] = [];
  for (const [j, a] of raw.entries()) {
    if (addressType === 'FQDN') {
      addresses.push(a);
      continue;
    }
    const ip = canonicalIp(a);
    if (ip === null) return r.fail('FERRY_MANIFEST_INVALID_FIELD', `${at}.addresses[${j}]`, `not an IP: ${q(a)}`);
    addresses.push(ip);
  }
  const conditions = get(e, 'conditions');
  const ready = isObj(conditions) ? get(conditions, 'ready') !== false : true;
  const nodeName = r.optString(get(e, 'nodeName'), `${at}.nodeName`);
  const ref = get(e, 'targetRef');
  let targetRef: EndpointSliceEndpoint['targetRef'] = null;
  if (isObj(ref)) {
    const kind = get(ref, 'kind');
    const namespace = get(ref, 'namespace');
    const name = get(ref, 'name');
    if (typeof kind === 'string' && typeof name === 'string') {
      targetRef = { kind, namespace: typeof namespace === 'string' ? namespace : '', name };
    }
  }
  if (nodeName === null) return null;
  return { addresses, ready, nodeName: nodeName ?? null, targetRef };
}
