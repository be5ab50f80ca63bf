// Services without a selector (docs/architecture.md "Policy and enrollment"): their endpoints come from discovery.k8s.io/v1 EndpointSlices
// labelled kubernetes.io/service-name, not from pod labels. Each ready endpoint address becomes an endpoint of
// the Service: a pod it names (targetRef) or whose IP it is gets the Service added to its Workload; any
// other address gets a Workload of its own (plain TCP, no identity: nothing enrolls it), one per namespace
// and IP, as Istio does for endpoints that are not pods. Ports map by name: the slice port named like the
// Service port gives the target port. Slices of Services that have a selector are ignored (the selector
// decides, exactly as for manifests). Pure.
import { canonicalIp } from '../../mesh/ip-addr.ts';
import type { PortMap, ServiceKey, Workload } from '../../mesh/types.ts';
import { serviceKey } from '../../mesh/types.ts';
import type { EndpointSliceObject, ServiceObject } from '../sources/types.ts';
import { serviceHostname } from './services.ts';
import type { Diagnostics, TranslateSettings } from './types.ts';

/** Adds the endpoints of selector-less Services to `workloads` (returned anew; inputs are not mutated). */
export function applyEndpointSlices(
  workloads: readonly Workload[],
  services: readonly ServiceObject[],
  slices: readonly EndpointSliceObject[],
  settings: TranslateSettings,
  diags: Diagnostics,
): Workload[] {
  const selectorless = new Map<string, ServiceObject>();
  for (const s of services) {
    if (s.spec.selector === null && s.spec.type !== 'ExternalName') {
      selectorless.set(`${s.metadata.namespace}/${s.metadata.name}`, s);
    }
  }
  if (selectorless.size === 0 || slices.length === 0) return [...workloads];
  const out = new Map<string, Workload>(workloads.map((w) => [w.uid, w]));
  const byIp = new Map<string, string>();
  for (const w of workloads) for (const a of w.addresses) byIp.set(a, w.uid);
  const addService = (uid: string, key: ServiceKey, ports: PortMap): void => {
    const w = out.get(uid);
    if (w === undefined) return;
    const merged = new Map(w.services);
    merged.set(key, new Map([...(merged.get(key) ?? []), ...ports]));
    out.set(uid, { ...w, services: merged });
  };
  for (const slice of slices) {
    const ns = slice.metadata.namespace;
    const svc = slice.spec.serviceName === null ? undefined : selectorless.get(`${ns}/${slice.spec.serviceName}`);
    if (svc === undefined) continue;
    if (slice.spec.addressType === 'FQDN') {
      diags.warn(slice, 'FERRY_TRANSLATE_UNSUPPORTED', 'addressType', 'FQDN endpoints are not part of the mesh');
      continue;
    }
    const ports = slicePorts(svc, slice);
    const key = serviceKey(ns, serviceHostname(svc.metadata.name, ns, settings));
    for (const e of slice.spec.endpoints) {
      if (!e.ready) continue;
      const podUid =
        e.targetRef?.kind === 'Pod'
          ? `${settings.clusterId}//Pod/${e.targetRef.namespace || ns}/${e.targetRef.name}`
          : '';
      for (const address of e.addresses) {
        const ip = canonicalIp(address);
        if (ip === null) continue;
        const existing = out.has(podUid) ? podUid : byIp.get(ip);
        if (existing !== undefined) {
          addService(existing, key, ports);
          continue;
        }
        const uid = `${settings.clusterId}/discovery.k8s.io/EndpointSlice/${ns}/${ip}`;
        out.set(uid, endpointWorkload(uid, ns, ip, e.nodeName ?? '', svc.metadata.name, settings));
        byIp.set(ip, uid);
        addService(uid, key, ports);
      }
    }
  }
  return [...out.values()];
}

/** Service port → the slice's port of the same name (null name matches the unnamed port). */
function slicePorts(svc: ServiceObject, slice: EndpointSliceObject): PortMap {
  const ports = new Map<number, number>();
  for (const p of svc.spec.ports) {
    if (p.protocol !== 'TCP') continue;
    const match = slice.spec.ports.find((sp) => sp.name === p.name && sp.protocol === 'TCP' && sp.port !== null);
    if (match?.port != null) ports.set(p.port, match.port);
    else if (typeof p.targetPort === 'number') ports.set(p.port, p.targetPort);
  }
  return ports;
}

function endpointWorkload(
  uid: string,
  namespace: string,
  ip: string,
  node: string,
  serviceName: string,
  settings: TranslateSettings,
): Workload {
  return {
    uid,
    name: ip,
    namespace,
    addresses: [ip],
    network: '',
    protocol: 'TCP',
    trustDomain: settings.trustDomain,
    serviceAccount: 'default',
    node,
    waypoint: null,
    workloadName: serviceName,
    workloadType: 'pod',
    canonicalName: serviceName,
    canonicalRevision: 'latest',
    clusterId: settings.clusterId,
    status: 'Healthy',
    capacity: 1,
    authorizationPolicies: [],
    services: new Map(),
  };
}
