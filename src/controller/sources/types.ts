// Kubernetes objects as the controller sees them once a source has parsed and validated them (docs/architecture.md "Policy and enrollment",
// §7), the ClusterState collection translation reads, the MeshSource interface every source implements
// (manifest files now, the Kubernetes API later) and the Diagnostic value both report problems with.
// Only what the mesh needs is kept; maps instead of plain objects so hostile keys ("__proto__") stay data.
// Types only, plus tiny pure helpers: nothing here does I/O.

export type Labels = ReadonlyMap<string, string>;

/** Where an object came from: the manifest file and the line its document starts on (`api:Kind/ns/name`, line null, for objects read from the Kubernetes API). */
export interface ObjectOrigin {
  readonly file: string;
  readonly line: number | null;
}

export interface ObjectMeta {
  readonly name: string;
  /** '' for cluster-scoped objects (Namespace). */
  readonly namespace: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** metadata.creationTimestamp in ms since the epoch, or null (manifests rarely carry one). */
  readonly creationTimestampMs: number | null;
  /** Order in which the source first saw the object; breaks "oldest wins" ties when timestamps are absent. */
  readonly sequence: number;
  /** metadata.uid, resourceVersion and generation as the API server set them (absent in manifests). */
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
}

interface ObjectBase<K extends string> {
  readonly kind: K;
  readonly apiVersion: string;
  readonly metadata: ObjectMeta;
  readonly origin: ObjectOrigin;
}

export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

export interface ContainerPort {
  readonly name: string | null;
  readonly containerPort: number;
  readonly protocol: PortProtocol;
}

export interface Container {
  readonly name: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly ports: readonly ContainerPort[];
}

export interface PodSpec {
  /** spec.serviceAccountName (or the deprecated spec.serviceAccount); null = "default". */
  readonly serviceAccountName: string | null;
  readonly containers: readonly Container[];
  /** spec.nodeName when set (the local cluster places the pod on that node). */
  readonly nodeName?: string;
  /** spec.hostNetwork when true (such a pod is never ambient); absent when false. */
  readonly hostNetwork?: true;
}

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface SelectorRequirement {
  readonly key: string;
  readonly operator: SelectorOperator;
  readonly values: readonly string[];
}

/** metav1.LabelSelector: matchLabels AND every matchExpression. */
export interface LabelSelector {
  readonly matchLabels: Labels;
  readonly matchExpressions: readonly SelectorRequirement[];
}

export type NamespaceObject = ObjectBase<'Namespace'>;
export type ServiceAccountObject = ObjectBase<'ServiceAccount'>;

export interface PodObject extends ObjectBase<'Pod'> {
  readonly spec: PodSpec;
  /** status.podIP and status.phase as the kubelet reported them (absent in manifests). */
  readonly status?: { readonly podIP: string | null; readonly phase: string | null };
}

export interface NodeAddress {
  readonly type: string;
  readonly address: string;
}

/** A Kubernetes Node: its name is what a pod's spec.nodeName and a ztunnel's node identity say. */
export interface NodeObject extends ObjectBase<'Node'> {
  readonly status: { readonly addresses: readonly NodeAddress[] };
}

export interface EndpointSlicePort {
  readonly name: string | null;
  /** null: every port ("all ports" slices of a headless Service without ports). */
  readonly port: number | null;
  readonly protocol: PortProtocol;
}

export interface EndpointSliceEndpoint {
  /** Canonical IP addresses (IPv4/IPv6 slices; FQDN slices are kept but not translated). */
  readonly addresses: readonly string[];
  /** conditions.ready; an absent condition counts as ready (discovery.k8s.io/v1). */
  readonly ready: boolean;
  readonly nodeName: string | null;
  readonly targetRef: { readonly kind: string; readonly namespace: string; readonly name: string } | null;
}

/** discovery.k8s.io/v1 EndpointSlice: the endpoints of a Service, also of one without a selector. */
export interface EndpointSliceObject extends ObjectBase<'EndpointSlice'> {
  readonly spec: {
    /** Label kubernetes.io/service-name: the Service these endpoints belong to. */
    readonly serviceName: string | null;
    readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
    readonly ports: readonly EndpointSlicePort[];
    readonly endpoints: readonly EndpointSliceEndpoint[];
  };
}

/** gateway.networking.k8s.io GatewayClass: which controller implements Gateways of this class. */
export interface GatewayClassObject extends ObjectBase<'GatewayClass'> {
  readonly spec: { readonly controllerName: string };
}

export interface DeploymentObject extends ObjectBase<'Deployment'> {
  readonly spec: {
    readonly replicas: number;
    readonly selector: LabelSelector;
    readonly template: { readonly labels: Labels; readonly annotations: Labels; readonly spec: PodSpec };
  };
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

export interface ServicePortSpec {
  readonly name: string | null;
  readonly port: number;
  /** Number, or the name of a container port; defaults to `port` when absent. */
  readonly targetPort: number | string;
  readonly protocol: PortProtocol;
  /** spec.ports[].appProtocol as written (e.g. http, kubernetes.io/h2c, grpc), or null. */
  readonly appProtocol?: string | null;
}

export interface ServiceObject extends ObjectBase<'Service'> {
  readonly spec: {
    readonly type: ServiceType;
    /** spec.clusterIP as written: null (allocate), 'None' (headless) or an address. */
    readonly clusterIP: string | null;
    /** null: no selector (endpoints managed elsewhere); an empty map selects nothing either. */
    readonly selector: Labels | null;
    readonly ports: readonly ServicePortSpec[];
  };
}

// AuthorizationPolicy (security.istio.io/v1, v1beta1), structurally validated; the values (CIDRs, ports,
// string forms) are checked by translation, which knows which fields ztunnel can enforce.
export interface AuthzSourceSpec {
  readonly principals: readonly string[];
  readonly notPrincipals: readonly string[];
  readonly requestPrincipals: readonly string[];
  readonly notRequestPrincipals: readonly string[];
  readonly namespaces: readonly string[];
  readonly notNamespaces: readonly string[];
  readonly serviceAccounts: readonly string[];
  readonly notServiceAccounts: readonly string[];
  readonly ipBlocks: readonly string[];
  readonly notIpBlocks: readonly string[];
  readonly remoteIpBlocks: readonly string[];
  readonly notRemoteIpBlocks: readonly string[];
}

export interface AuthzOperationSpec {
  readonly hosts: readonly string[];
  readonly notHosts: readonly string[];
  readonly ports: readonly string[];
  readonly notPorts: readonly string[];
  readonly methods: readonly string[];
  readonly notMethods: readonly string[];
  readonly paths: readonly string[];
  readonly notPaths: readonly string[];
}

export interface AuthzConditionSpec {
  readonly key: string;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
}

export interface AuthzRuleSpec {
  /** `from[i].source`, in order (each non-empty). */
  readonly from: readonly AuthzSourceSpec[];
  /** `to[i].operation`, in order (each non-empty). */
  readonly to: readonly AuthzOperationSpec[];
  readonly when: readonly AuthzConditionSpec[];
}

export interface AuthorizationPolicyObject extends ObjectBase<'AuthorizationPolicy'> {
  readonly spec: {
    /** selector.matchLabels; null when there is no selector (or it is empty). */
    readonly selector: Labels | null;
    /** targetRef/targetRefs present: the policy binds to a waypoint, never to ztunnel. */
    readonly hasTargetRefs: boolean;
    /** As written, upper case; ALLOW when absent. */
    readonly action: string;
    /** [] when absent: an ALLOW then allows nothing, a DENY denies nothing. */
    readonly rules: readonly AuthzRuleSpec[];
    /** The spec as written (JSON): forwarded to waypoints when the policy has targetRefs. */
    readonly raw?: unknown;
  };
}

export type MtlsModeSpec = 'UNSET' | 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface PeerAuthenticationObject extends ObjectBase<'PeerAuthentication'> {
  readonly spec: {
    readonly selector: Labels | null;
    readonly mode: MtlsModeSpec;
    /** Target port → mode (portLevelMtls). */
    readonly portLevelMtls: ReadonlyMap<number, MtlsModeSpec>;
  };
}

export interface GatewayListener {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
}

export interface GatewayObject extends ObjectBase<'Gateway'> {
  readonly spec: { readonly gatewayClassName: string; readonly listeners: readonly GatewayListener[] };
}

/** Kept as parsed JSON for the waypoint's route compilation later. */
export interface HttpRouteObject extends ObjectBase<'HTTPRoute'> {
  readonly spec: unknown;
}

/** GRPCRoute (gateway.networking.k8s.io/v1): kept as parsed JSON, compiled like HTTPRoutes. */
export interface GrpcRouteObject extends ObjectBase<'GRPCRoute'> {
  readonly spec: unknown;
}

/** TCPRoute (gateway.networking.k8s.io/v1alpha2, experimental): kept as parsed JSON. */
export interface TcpRouteObject extends ObjectBase<'TCPRoute'> {
  readonly spec: unknown;
}

/** ReferenceGrant (gateway.networking.k8s.io): who may reference what in this (the target) namespace. */
export interface ReferenceGrantObject extends ObjectBase<'ReferenceGrant'> {
  readonly spec: {
    readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
    /** `name` null = every object of that kind. */
    readonly to: readonly { readonly group: string; readonly kind: string; readonly name: string | null }[];
  };
}

export type K8sObject =
  | NamespaceObject
  | PodObject
  | DeploymentObject
  | ServiceObject
  | ServiceAccountObject
  | AuthorizationPolicyObject
  | PeerAuthenticationObject
  | GatewayObject
  | HttpRouteObject
  | GrpcRouteObject
  | TcpRouteObject
  | ReferenceGrantObject
  | NodeObject
  | EndpointSliceObject
  | GatewayClassObject;

export type K8sKind = K8sObject['kind'];

/** Everything a source currently holds, each list sorted by namespace then name. */
export interface ClusterState {
  readonly namespaces: readonly NamespaceObject[];
  readonly pods: readonly PodObject[];
  readonly deployments: readonly DeploymentObject[];
  readonly services: readonly ServiceObject[];
  readonly serviceAccounts: readonly ServiceAccountObject[];
  readonly authorizationPolicies: readonly AuthorizationPolicyObject[];
  readonly peerAuthentications: readonly PeerAuthenticationObject[];
  readonly gateways: readonly GatewayObject[];
  readonly httpRoutes: readonly HttpRouteObject[];
  readonly grpcRoutes: readonly GrpcRouteObject[];
  readonly tcpRoutes: readonly TcpRouteObject[];
  readonly referenceGrants: readonly ReferenceGrantObject[];
  readonly nodes: readonly NodeObject[];
  readonly endpointSlices: readonly EndpointSliceObject[];
  readonly gatewayClasses: readonly GatewayClassObject[];
}

/** A source of cluster objects: manifest files (local mode) or the Kubernetes API. */
export interface MeshSource {
  /** Loads the initial state, calls onChange with it, then again after every change. */
  start(onChange: (state: ClusterState) => void): Promise<void>;
  close(): Promise<void>;
}

// ---- Diagnostics ----

export const DIAGNOSTIC_CODES = [
  'FERRY_MANIFEST_READ_FAILED',
  'FERRY_MANIFEST_YAML_SYNTAX',
  'FERRY_MANIFEST_UNKNOWN_KIND',
  'FERRY_MANIFEST_INVALID_NAME',
  'FERRY_MANIFEST_INVALID_SELECTOR',
  'FERRY_MANIFEST_INVALID_PORT',
  'FERRY_MANIFEST_INVALID_FIELD',
  'FERRY_MANIFEST_DUPLICATE',
  'FERRY_MANIFEST_NOT_FOUND',
  'FERRY_TRANSLATE_UNSUPPORTED',
  'FERRY_TRANSLATE_UNRESOLVED',
  'FERRY_TRANSLATE_CONFLICT',
  'FERRY_ROUTE_INVALID',
  'FERRY_ROUTE_UNRESOLVED_REF',
  'FERRY_ROUTE_NO_PARENT',
  'FERRY_KUBE_KIND_MISSING',
] as const;
export type DiagnosticCode = (typeof DIAGNOSTIC_CODES)[number];

/** A problem with one object (or one file), reported to the CLI and the log; never thrown. */
export interface Diagnostic {
  readonly severity: 'error' | 'warning';
  readonly code: DiagnosticCode;
  /** `Kind/ns/name`, `Kind/name` when cluster-scoped, '' when no object could be identified. */
  readonly object: string;
  /** Path inside the object, e.g. `spec.rules[0].to[0].operation.methods`; '' for the whole object. */
  readonly field: string;
  readonly message: string;
  readonly file: string | null;
  readonly line: number | null;
}

/** `Kind/ns/name` (or `Kind/name` for cluster-scoped kinds): how diagnostics and keys name an object. */
export function objectRef(kind: string, namespace: string, name: string): string {
  return namespace === '' ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

export function refOf(obj: K8sObject): string {
  return objectRef(obj.kind, obj.metadata.namespace, obj.metadata.name);
}

/** One-line human form: `file:line: error Kind/ns/name spec.x: message [CODE]`. */
export function formatDiagnostic(d: Diagnostic): string {
  const where = d.file === null ? '' : `${d.file}${d.line === null ? '' : `:${d.line}`}: `;
  const what = [d.object, d.field].filter((s) => s !== '').join(' ');
  return `${where}${d.severity} ${what === '' ? '' : `${what}: `}${d.message} [${d.code}]`;
}

const byNamespaceThenName = (a: K8sObject, b: K8sObject): number =>
  a.metadata.namespace === b.metadata.namespace
    ? compare(a.metadata.name, b.metadata.name)
    : compare(a.metadata.namespace, b.metadata.namespace);

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Groups objects by kind into a ClusterState, each list sorted (deterministic translation output). */
export function buildClusterState(objects: Iterable<K8sObject>): ClusterState {
  const namespaces: NamespaceObject[] = [];
  const pods: PodObject[] = [];
  const deployments: DeploymentObject[] = [];
  const services: ServiceObject[] = [];
  const serviceAccounts: ServiceAccountObject[] = [];
  const authorizationPolicies: AuthorizationPolicyObject[] = [];
  const peerAuthentications: PeerAuthenticationObject[] = [];
  const gateways: GatewayObject[] = [];
  const httpRoutes: HttpRouteObject[] = [];
  const grpcRoutes: GrpcRouteObject[] = [];
  const tcpRoutes: TcpRouteObject[] = [];
  const referenceGrants: ReferenceGrantObject[] = [];
  const nodes: NodeObject[] = [];
  const endpointSlices: EndpointSliceObject[] = [];
  const gatewayClasses: GatewayClassObject[] = [];
  for (const o of objects) {
    switch (o.kind) {
      case 'Namespace':
        namespaces.push(o);
        break;
      case 'Pod':
        pods.push(o);
        break;
      case 'Deployment':
        deployments.push(o);
        break;
      case 'Service':
        services.push(o);
        break;
      case 'ServiceAccount':
        serviceAccounts.push(o);
        break;
      case 'AuthorizationPolicy':
        authorizationPolicies.push(o);
        break;
      case 'PeerAuthentication':
        peerAuthentications.push(o);
        break;
      case 'Gateway':
        gateways.push(o);
        break;
      case 'HTTPRoute':
        httpRoutes.push(o);
        break;
      case 'GRPCRoute':
        grpcRoutes.push(o);
        break;
      case 'TCPRoute':
        tcpRoutes.push(o);
        break;
      case 'ReferenceGrant':
        referenceGrants.push(o);
        break;
      case 'Node':
        nodes.push(o);
        break;
      case 'EndpointSlice':
        endpointSlices.push(o);
        break;
      case 'GatewayClass':
        gatewayClasses.push(o);
        break;
      default:
        return assertNever(o);
    }
  }
  for (const list of [
    namespaces,
    pods,
    deployments,
    services,
    serviceAccounts,
    authorizationPolicies,
    peerAuthentications,
    gateways,
    httpRoutes,
    grpcRoutes,
    tcpRoutes,
    referenceGrants,
    nodes,
    endpointSlices,
    gatewayClasses,
  ]) {
    list.sort(byNamespaceThenName);
  }
  return {
    namespaces,
    pods,
    deployments,
    services,
    serviceAccounts,
    authorizationPolicies,
    peerAuthentications,
    gateways,
    httpRoutes,
    grpcRoutes,
    tcpRoutes,
    referenceGrants,
    nodes,
    endpointSlices,
    gatewayClasses,
  };
}

export function assertNever(x: never): never {
  throw new TypeError(`unexpected value ${JSON.stringify(x)}`);
}
