// What `ferry migrate check|convert` works on and produces (docs/migration.md): the inventory of a sidecar
// mesh's configuration (Istio networking/security objects plus the Services, workloads and Namespaces they
// refer to), the findings (what converts, what changes, what blocks), and the converted objects. Types and
// tiny pure helpers only; nothing here does I/O.
import type {
  AuthorizationPolicyObject,
  DeploymentObject,
  NamespaceObject,
  ObjectOrigin,
  PeerAuthenticationObject,
  PodObject,
  ServiceObject,
} from '../controller/sources/types.ts';

export type Obj = { readonly [key: string]: unknown };

/** An Istio object Ferry's controller does not parse (networking.istio.io and friends): identity + spec as written. */
export interface IstioObject {
  readonly kind: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly name: string;
  readonly labels: ReadonlyMap<string, string>;
  /** `spec` as written (an object; `{}` when absent). */
  readonly spec: Obj;
  readonly origin: ObjectOrigin;
}

/** Everything the migration reads, each list in input order. */
export interface Inventory {
  readonly namespaces: readonly NamespaceObject[];
  readonly services: readonly ServiceObject[];
  readonly deployments: readonly DeploymentObject[];
  readonly pods: readonly PodObject[];
  readonly authorizationPolicies: readonly AuthorizationPolicyObject[];
  readonly peerAuthentications: readonly PeerAuthenticationObject[];
  readonly virtualServices: readonly IstioObject[];
  readonly destinationRules: readonly IstioObject[];
  /** EnvoyFilter, Sidecar, WasmPlugin, RequestAuthentication, ServiceEntry, Gateway (networking.istio.io), … */
  readonly otherIstio: readonly IstioObject[];
  /** Objects that could not be read (bad YAML, invalid object): reported, never guessed at. */
  readonly problems: readonly InputProblem[];
}

export interface InputProblem {
  readonly file: string;
  readonly line: number | null;
  /** `Kind/ns/name` when known, else ''. */
  readonly object: string;
  readonly message: string;
}

/**
 * - `blocker`: must be resolved by hand before migrating (config would route or authorize differently, or an
 *   Envoy-specific extension would be lost); `check` and `convert` exit 1.
 * - `warning`: converted with a difference, or a feature that ambient/Ferry does not have is dropped; listed.
 * - `info`: what is converted and how.
 */
export type Severity = 'blocker' | 'warning' | 'info';

export type FindingCategory =
  | 'route' // VirtualService → HTTPRoute
  | 'subset' // DestinationRule subsets → per-subset Services
  | 'traffic-policy' // DestinationRule trafficPolicy
  | 'l7-policy' // AuthorizationPolicy selector → targetRefs
  | 'l4-policy' // AuthorizationPolicy enforced by ztunnel as is
  | 'peer-authentication'
  | 'export-to'
  | 'sidecar'
  | 'envoy-filter'
  | 'unsupported-kind'
  | 'waypoint'
  | 'input';

export interface Finding {
  readonly severity: Severity;
  readonly category: FindingCategory;
  /** '' for cluster-wide findings. */
  readonly namespace: string;
  /** `Kind/ns/name` of the source object. */
  readonly object: string;
  /** Path inside the source object (`spec.http[1].fault`), or ''. */
  readonly field: string;
  readonly message: string;
}

/** One object `convert` writes, with what it was made from and what of its source it could not carry. */
export interface ConvertedObject {
  readonly namespace: string;
  /** The Kubernetes object (apiVersion, kind, metadata, spec): plain JSON. */
  readonly manifest: Obj;
  /** `Kind/ns/name` of the objects it was made from. */
  readonly from: readonly string[];
  /** Lines for the `# ferry: not converted:` comment block above it. */
  readonly notConverted: readonly string[];
}

/** An HTTPRoute filter as written (plain JSON). */
export type Filter = Readonly<Record<string, unknown>> & { readonly type: string };

/** An HTTPRoute backendRef as written. */
export interface BackendYaml {
  name: string;
  namespace?: string;
  port: number;
  weight?: number;
  filters?: Filter[];
}

export interface MigrationPlan {
  readonly objects: readonly ConvertedObject[];
  /** Sorted by namespace, then severity (blockers first), then object. */
  readonly findings: readonly Finding[];
}

export function objectRefOf(kind: string, namespace: string, name: string): string {
  return namespace === '' ? `${kind}/${name}` : `${kind}/${namespace}/${name}`;
}

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Labels as a plain object (sorted keys), for manifests. */
export function labelsToObject(labels: ReadonlyMap<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of [...labels.keys()].sort()) out[key] = labels.get(key) as string;
  return out;
}

const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { blocker: 0, warning: 1, info: 2 };

export function compareFindings(a: Finding, b: Finding): number {
  return (
    (a.namespace < b.namespace ? -1 : a.namespace > b.namespace ? 1 : 0) ||
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    (a.object < b.object ? -1 : a.object > b.object ? 1 : 0)
  );
}

/** Labels a migration writes on every object it generates (so a reviewer and `kubectl get -l` can find them). */
export const MIGRATED_BY_LABEL = 'ferry.dev/migrated-by';
export const MIGRATED_FROM_ANNOTATION = 'ferry.dev/migrated-from';
export const WAYPOINT_NAME = 'waypoint';
