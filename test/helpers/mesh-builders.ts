// Fixture builders for mesh state (in the spirit of ztunnel's workload_builder / new_proxy_state): a workload,
// service or policy from a name plus only the fields a test cares about, and a MeshView from those lists.
import { EMPTY_MATCH } from '../../src/mesh/authz/match.ts';
import { buildMeshView, type MeshView } from '../../src/mesh/mesh-view.ts';
import type {
  Authorization,
  GatewayAddress,
  Match,
  MeshConfig,
  PortMap,
  Service,
  ServiceKey,
  ServicePort,
  Workload,
} from '../../src/mesh/types.ts';

export const TRUST_DOMAIN = 'cluster.local';
/** The ztunnel ports of docs/architecture.md "Processes and ports", as the planners' `selfPorts`. */
export const SELF_PORTS: ReadonlySet<number> = new Set([15001, 15006, 15008, 15080]);

export type WorkloadOverrides = Partial<Omit<Workload, 'services'>> & {
  /** `{ 'ns/hostname': { servicePort: targetPort } }` */
  readonly services?: Readonly<Record<ServiceKey, Readonly<Record<number, number>>>>;
};

/** An HBONE, healthy, capacity-1 pod in `default` with service account = name, on node `node-a`. */
export function workload(name: string, ips: string | readonly string[], overrides: WorkloadOverrides = {}): Workload {
  const namespace = overrides.namespace ?? 'default';
  const { services, ...rest } = overrides;
  return {
    uid: `Kubernetes//Pod/${namespace}/${name}`,
    name,
    namespace,
    addresses: typeof ips === 'string' ? [ips] : ips,
    network: '',
    protocol: 'HBONE',
    trustDomain: TRUST_DOMAIN,
    serviceAccount: name,
    node: 'node-a',
    waypoint: null,
    workloadName: name,
    workloadType: 'deployment',
    canonicalName: name,
    canonicalRevision: 'latest',
    clusterId: 'Kubernetes',
    status: 'Healthy',
    capacity: 1,
    authorizationPolicies: [],
    ...rest,
    services: toServiceMap(services ?? {}),
  };
}

export type ServiceOverrides = Partial<Omit<Service, 'ports'>> & {
  /** `{ servicePort: targetPort }`; targetPort 0 = named port. */
  readonly ports?: Readonly<Record<number, number>>;
};

/** A service `name.default.svc.cluster.local` with one VIP on the default network. */
export function service(name: string, vip: string, overrides: ServiceOverrides = {}): Service {
  const namespace = overrides.namespace ?? 'default';
  const { ports, ...rest } = overrides;
  return {
    name,
    namespace,
    hostname: `${name}.${namespace}.svc.cluster.local`,
    vips: [{ network: '', address: vip }],
    subjectAltNames: [],
    waypoint: null,
    ...rest,
    ports: Object.entries(ports ?? { 80: 8080 }).map(
      ([servicePort, targetPort]): ServicePort => ({ servicePort: Number(servicePort), targetPort }),
    ),
  };
}

/** `ns/hostname` of a built service. */
export function keyOf(svc: Service): ServiceKey {
  return `${svc.namespace}/${svc.hostname}`;
}

/** A namespace-scoped ALLOW policy with no rules (matches nothing) unless overridden. */
export function policy(name: string, overrides: Partial<Authorization> = {}): Authorization {
  return { name, namespace: 'default', scope: 'Namespace', action: 'Allow', dryRun: false, rules: [], ...overrides };
}

/** A Match with only the given fields set. */
export function match(fields: Partial<Match>): Match {
  return { ...EMPTY_MATCH, ...fields };
}

export function waypointByAddress(ip: string, port = 15008): GatewayAddress {
  return { destination: { kind: 'address', address: { network: '', address: ip } }, hboneMtlsPort: port };
}

export function waypointByHostname(namespace: string, hostname: string, port = 15008): GatewayAddress {
  return { destination: { kind: 'hostname', namespace, hostname }, hboneMtlsPort: port };
}

export function meshConfig(parts: Partial<MeshConfig>): MeshConfig {
  return { workloads: parts.workloads ?? [], services: parts.services ?? [], policies: parts.policies ?? [] };
}

/** ztunnel's new_proxy_state: a view over the given objects. */
export function meshView(parts: Partial<MeshConfig>, version = 1): MeshView {
  return buildMeshView(meshConfig(parts), { version });
}

/** A `random` that returns the given values in turn (cycling), for deterministic load balancing. */
export function sequenceRandom(...values: number[]): () => number {
  let i = 0;
  return () => {
    const v = values[i % values.length] ?? 0;
    i++;
    return v;
  };
}

function toServiceMap(
  services: Readonly<Record<ServiceKey, Readonly<Record<number, number>>>>,
): Map<ServiceKey, PortMap> {
  const out = new Map<ServiceKey, PortMap>();
  for (const [key, ports] of Object.entries(services)) {
    out.set(key, new Map(Object.entries(ports).map(([sp, tp]) => [Number(sp), tp])));
  }
  return out;
}
