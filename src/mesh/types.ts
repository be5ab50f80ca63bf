// Domain model of the mesh as a ztunnel sees it: workloads, services, authorization policies.
// Shaped after Istio's ztunnel types (istio.workload.Address, istio.security.Authorization; see
// docs/architecture.md "Policy and enrollment", "Configuration distribution (delta xDS)") but already validated: wire/YAML forms are converted once,
// on arrival (store/local-config.ts now, the xDS client later). Nothing here does I/O.

/** Canonical textual IP address (IPv4 dotted quad, or compressed lowercase IPv6). */
export type IpAddr = string;

/** `network/ip` key, the alias Istio uses to look up addresses ("" network = default). */
export type NetworkAddress = { readonly network: string; readonly address: IpAddr };

export type TunnelProtocol = 'HBONE' | 'TCP';
export type WorkloadStatus = 'Healthy' | 'Unhealthy';
export type WorkloadType = 'deployment' | 'cronjob' | 'pod' | 'job';

/** Where a waypoint is: a concrete address, or a Service by namespace/hostname. */
export type GatewayDestination =
  | { readonly kind: 'address'; readonly address: NetworkAddress }
  | { readonly kind: 'hostname'; readonly namespace: string; readonly hostname: string };

export interface GatewayAddress {
  readonly destination: GatewayDestination;
  /** HBONE port of the waypoint, 15008 by convention. */
  readonly hboneMtlsPort: number;
}

/** Service port → target port for one service a workload backs (0 target = use the service's). */
export type PortMap = ReadonlyMap<number, number>;

/** Service key: `<namespace>/<hostname>`. */
export type ServiceKey = string;
/** Policy key: `<namespace>/<name>`. */
export type PolicyKey = string;

export interface Workload {
  /** Globally unique id, e.g. `Kubernetes//Pod/default/sleep-abc`. */
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly addresses: readonly IpAddr[];
  readonly network: string;
  readonly protocol: TunnelProtocol;
  readonly trustDomain: string;
  readonly serviceAccount: string;
  readonly node: string;
  readonly waypoint: GatewayAddress | null;
  readonly workloadName: string;
  readonly workloadType: WorkloadType;
  readonly canonicalName: string;
  readonly canonicalRevision: string;
  readonly clusterId: string;
  readonly status: WorkloadStatus;
  /** Load-balancing weight (Istio `capacity`), ≥ 1. */
  readonly capacity: number;
  /** Selector-scoped policies that apply to this workload. */
  readonly authorizationPolicies: readonly PolicyKey[];
  /** The services this workload is an endpoint of. */
  readonly services: ReadonlyMap<ServiceKey, PortMap>;
}

/** How a waypoint speaks to a Service port (Kubernetes appProtocol, Istio's Port.app_protocol). */
export type AppProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface ServicePort {
  readonly servicePort: number;
  /** 0 means a named target port: resolve per endpoint from Workload.services. */
  readonly targetPort: number;
  /** Kubernetes appProtocol when known (waypoints choose HTTP/1.1, HTTP/2 or TCP by it). */
  readonly appProtocol?: AppProtocol | null;
  /** The Service port's name (HTTPRoute parentRef sectionName). */
  readonly name?: string | null;
}

export interface Service {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly NetworkAddress[];
  readonly ports: readonly ServicePort[];
  /** Extra SANs accepted for endpoints of this service (SPIFFE IDs as strings). */
  readonly subjectAltNames: readonly string[];
  readonly waypoint: GatewayAddress | null;
}

// ---- Authorization (istio.security.Authorization) ----

export type PolicyScope = 'Global' | 'Namespace' | 'WorkloadSelector';
export type PolicyAction = 'Allow' | 'Deny';

export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'suffix'; readonly value: string }
  | { readonly kind: 'presence' };

export interface Cidr {
  readonly address: IpAddr;
  readonly prefixLength: number;
}

export interface ServiceAccountMatch {
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Fields AND together; values within one field OR. An all-empty Match never matches. */
export interface Match {
  readonly namespaces: readonly StringMatch[];
  readonly notNamespaces: readonly StringMatch[];
  readonly serviceAccounts: readonly ServiceAccountMatch[];
  readonly notServiceAccounts: readonly ServiceAccountMatch[];
  readonly principals: readonly StringMatch[];
  readonly notPrincipals: readonly StringMatch[];
  readonly sourceIps: readonly Cidr[];
  readonly notSourceIps: readonly Cidr[];
  readonly destinationIps: readonly Cidr[];
  readonly notDestinationIps: readonly Cidr[];
  readonly destinationPorts: readonly number[];
  readonly notDestinationPorts: readonly number[];
}

/** Clause = OR of matches; Rule = AND of clauses; policy = OR of rules. */
export type Clause = readonly Match[];
export type Rule = readonly Clause[];

export interface Authorization {
  readonly name: string;
  readonly namespace: string;
  readonly scope: PolicyScope;
  readonly action: PolicyAction;
  readonly dryRun: boolean;
  readonly rules: readonly Rule[];
}

/** The full configuration a ztunnel serves from. Immutable; replaced whole on every update. */
export interface MeshConfig {
  readonly workloads: readonly Workload[];
  readonly services: readonly Service[];
  readonly policies: readonly Authorization[];
}

export function serviceKey(namespace: string, hostname: string): ServiceKey {
  return `${namespace}/${hostname}`;
}

export function policyKey(namespace: string, name: string): PolicyKey {
  return `${namespace}/${name}`;
}
