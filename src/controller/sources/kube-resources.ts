// Which kinds the Kubernetes source watches, where each lives in the REST API, and the pure decisions made
// from API discovery: which group-version of each kind to watch (v1 before v1beta1), which kinds the server
// does not serve (a CRD not installed: tolerated, reported once), and what to start or stop when a later
// discovery differs (a CRD installed or removed while running). Discovery I/O is `discoverServed`.
import type { KubeClient } from '../../kube/client.ts';
import { isJson } from '../../kube/client.ts';
import type { ClusterState, K8sKind } from './types.ts';

export interface WatchedKind {
  readonly kind: K8sKind;
  /** '' for the core group. */
  readonly group: string;
  /** In order of preference. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly namespaced: boolean;
  /** The ClusterState list the kind's objects go to. */
  readonly field: keyof ClusterState;
}

const GATEWAY = 'gateway.networking.k8s.io';
const ISTIO_SECURITY = 'security.istio.io';

export const WATCHED_KINDS: readonly WatchedKind[] = [
  { kind: 'Namespace', group: '', versions: ['v1'], plural: 'namespaces', namespaced: false, field: 'namespaces' },
  { kind: 'Pod', group: '', versions: ['v1'], plural: 'pods', namespaced: true, field: 'pods' },
  { kind: 'Service', group: '', versions: ['v1'], plural: 'services', namespaced: true, field: 'services' },
  {
    kind: 'ServiceAccount',
    group: '',
    versions: ['v1'],
    plural: 'serviceaccounts',
    namespaced: true,
    field: 'serviceAccounts',
  },
  { kind: 'Node', group: '', versions: ['v1'], plural: 'nodes', namespaced: false, field: 'nodes' },
  {
    kind: 'EndpointSlice',
    group: 'discovery.k8s.io',
    versions: ['v1'],
    plural: 'endpointslices',
    namespaced: true,
    field: 'endpointSlices',
  },
  {
    kind: 'AuthorizationPolicy',
    group: ISTIO_SECURITY,
    versions: ['v1', 'v1beta1'],
    plural: 'authorizationpolicies',
    namespaced: true,
    field: 'authorizationPolicies',
  },
  {
    kind: 'PeerAuthentication',
    group: ISTIO_SECURITY,
    versions: ['v1', 'v1beta1'],
    plural: 'peerauthentications',
    namespaced: true,
    field: 'peerAuthentications',
  },
  {
    kind: 'Gateway',
    group: GATEWAY,
    versions: ['v1', 'v1beta1'],
    plural: 'gateways',
    namespaced: true,
    field: 'gateways',
  },
  {
    kind: 'GatewayClass',
    group: GATEWAY,
    versions: ['v1', 'v1beta1'],
    plural: 'gatewayclasses',
    namespaced: false,
    field: 'gatewayClasses',
  },
  {
    kind: 'HTTPRoute',
    group: GATEWAY,
    versions: ['v1', 'v1beta1'],
    plural: 'httproutes',
    namespaced: true,
    field: 'httpRoutes',
  },
  { kind: 'GRPCRoute', group: GATEWAY, versions: ['v1'], plural: 'grpcroutes', namespaced: true, field: 'grpcRoutes' },
  {
    kind: 'TCPRoute',
    group: GATEWAY,
    versions: ['v1', 'v1alpha2'],
    plural: 'tcproutes',
    namespaced: true,
    field: 'tcpRoutes',
  },
  {
    kind: 'ReferenceGrant',
    group: GATEWAY,
    versions: ['v1', 'v1beta1'],
    plural: 'referencegrants',
    namespaced: true,
    field: 'referenceGrants',
  },
];

export function groupVersion(group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`;
}

/** Collection path across all namespaces: `/api/v1/pods`, `/apis/<group>/<version>/<plural>`. */
export function collectionPath(k: WatchedKind, version: string): string {
  return k.group === '' ? `/api/${version}/${k.plural}` : `/apis/${k.group}/${version}/${k.plural}`;
}

/** Path of one object (`/status` appended for the subresource). */
export function objectPath(k: WatchedKind, version: string, namespace: string, name: string): string {
  const base = k.group === '' ? `/api/${version}` : `/apis/${k.group}/${version}`;
  const ns = k.namespaced ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${k.plural}/${encodeURIComponent(name)}`;
}

export function watchedKind(kind: K8sKind): WatchedKind {
  const k = WATCHED_KINDS.find((w) => w.kind === kind);
  if (k === undefined) throw new TypeError(`${kind} is not a watched kind`);
  return k;
}

/** What discovery found: group-version → resource plurals it serves. */
export type ServedResources = ReadonlyMap<string, ReadonlySet<string>>;

/** The version to watch of each kind; null when the server serves none of its versions. */
export type WatchPlan = ReadonlyMap<K8sKind, string | null>;

export function planWatches(served: ServedResources, kinds: readonly WatchedKind[] = WATCHED_KINDS): WatchPlan {
  const plan = new Map<K8sKind, string | null>();
  for (const k of kinds) {
    const version = k.versions.find((v) => served.get(groupVersion(k.group, v))?.has(k.plural) === true);
    plan.set(k.kind, version ?? null);
  }
  return plan;
}

export type WatchAction =
  | { readonly action: 'start'; readonly kind: K8sKind; readonly version: string }
  | { readonly action: 'stop'; readonly kind: K8sKind }
  | { readonly action: 'switch'; readonly kind: K8sKind; readonly version: string }
  | { readonly action: 'report-missing'; readonly kind: K8sKind };

/**
 * From the informers running now (kind → version) and a new plan: what to start, stop or move to another
 * version, and which kinds to report as missing: only those not already reported (`reported`), so a kind
 * missing at every re-discovery is reported once, and again only after it was served in between.
 */
export function diffWatches(
  running: ReadonlyMap<K8sKind, string>,
  plan: WatchPlan,
  reported: ReadonlySet<K8sKind>,
): WatchAction[] {
  const out: WatchAction[] = [];
  for (const [kind, version] of plan) {
    const now = running.get(kind);
    if (version === null) {
      if (now !== undefined) out.push({ action: 'stop', kind });
      if (!reported.has(kind)) out.push({ action: 'report-missing', kind });
    } else if (now === undefined) out.push({ action: 'start', kind, version });
    else if (now !== version) out.push({ action: 'switch', kind, version });
  }
  return out;
}

/** Discovery I/O: the core v1 resources plus every group-version of the groups the source cares about. */
export async function discoverServed(
  client: KubeClient,
  signal?: AbortSignal,
  kinds: readonly WatchedKind[] = WATCHED_KINDS,
): Promise<ServedResources> {
  const served = new Map<string, Set<string>>();
  const wanted = new Set(kinds.flatMap((k) => k.versions.map((v) => groupVersion(k.group, v))));
  const groups = await client.get('/apis', signal);
  const available = new Set<string>(['v1']);
  for (const g of Array.isArray(groups.groups) ? groups.groups : []) {
    if (!isJson(g) || !Array.isArray(g.versions)) continue;
    for (const v of g.versions) if (isJson(v) && typeof v.groupVersion === 'string') available.add(v.groupVersion);
  }
  for (const gv of wanted) {
    if (!available.has(gv)) continue;
    const list = await client.get(gv === 'v1' ? '/api/v1' : `/apis/${gv}`, signal);
    const names = new Set<string>();
    for (const r of Array.isArray(list.resources) ? list.resources : []) {
      if (isJson(r) && typeof r.name === 'string' && !r.name.includes('/')) names.add(r.name);
    }
    served.set(gv, names);
  }
  return served;
}
