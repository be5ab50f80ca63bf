// Inputs and outputs of the translation ClusterState → MeshConfig (docs/architecture.md "Configuration distribution (delta xDS)", "Policy and enrollment"): cluster settings,
// the orchestrator's placement of pods (IP, node) and VIP allocation, the waypoints to run, and the
// Diagnostics collector every translator reports through. Types plus one small collector; no I/O.

import type { RouteStatus } from '../../../gateway-api/types.ts';
import type { MeshConfig } from '../../mesh/types.ts';
import type { Diagnostic, DiagnosticCode, K8sObject, Labels, PodSpec } from '../sources/types.ts';
import { refOf } from '../sources/types.ts';

export interface TranslateSettings {
  readonly trustDomain: string;
  /** Istio's root namespace: mesh-wide policies live here. */
  readonly rootNamespace: string;
  readonly clusterId: string;
  /** DNS suffix of Service hostnames: `<svc>.<ns>.svc.<clusterDomain>`. */
  readonly clusterDomain: string;
  /**
   * Run the sidecar injector (src/mesh/sidecar-injection.ts) on pods from manifests: the local cluster,
   * which then runs Ferry's sidecars. Off for pods read from a Kubernetes API, which went through that
   * cluster's own admission already (an Istio sidecar there is not Ferry's and stays plain TCP).
   */
  readonly injectSidecars?: boolean;
  /**
   * Pods (`<ns>/<name>`) that were created with Ferry's sidecar: when given, these and only these are
   * injected, whatever their labels say now (injection happens at creation, as with an admission webhook).
   */
  readonly sidecarPods?: ReadonlySet<string>;
  /**
   * Pods come from a Kubernetes API whose node agents set Istio's redirection annotation: an ambient pod
   * is HBONE only once the annotation says `enabled` (src/mesh/ambient-enrollment.ts). Off for pods from
   * manifests, where the local controller gates HBONE on the enrollments it made itself.
   */
  readonly requireRedirectionAnnotation?: boolean;
}

export const DEFAULT_TRANSLATE_SETTINGS: TranslateSettings = {
  trustDomain: 'cluster.local',
  rootNamespace: 'istio-system',
  clusterId: 'Kubernetes',
  clusterDomain: 'cluster.local',
};

/** Where the orchestrator put a pod. */
export interface PodPlacement {
  readonly ip: string;
  readonly node: string;
}

/** Pod key `<ns>/<pod name>` → placement. Pods without one are not running yet and get no Workload. */
export type Placement = ReadonlyMap<string, PodPlacement>;
/** Service key `<ns>/<service name>` → allocated ClusterIP. */
export type ServiceVips = ReadonlyMap<string, string>;

export type WaypointFor = 'service' | 'workload' | 'all' | 'none';

/** A Gateway of class ferry-waypoint the orchestrator must run as a waypoint pod. */
export interface WaypointSpec {
  readonly name: string;
  readonly namespace: string;
  /** `<ns>/<name>-waypoint`: the pod that runs it (placed like any pod). */
  readonly podKey?: string;
  /** Label istio.io/waypoint-for; `service` when absent. */
  readonly for: WaypointFor;
}

/** An object a waypoint compiles itself (ferry.waypoint.v1.L7Resource), named `<kind>/<ns>/<name>`. */
export interface L7Entry {
  readonly name: string;
  readonly kind: 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'AuthorizationPolicy' | 'Gateway' | 'ReferenceGrant';
  readonly json: string;
}

export interface TranslateResult {
  readonly config: MeshConfig;
  readonly waypoints: readonly WaypointSpec[];
  readonly diagnostics: readonly Diagnostic[];
  /** What waypoints get besides the mesh: routes, L7 policies, waypoint Gateways. */
  readonly l7: readonly L7Entry[];
  /** Status of every HTTPRoute, GRPCRoute and TCPRoute (computed with the same compiler the waypoints run). */
  readonly routeStatus: readonly RouteStatus[];
  /** uids of waypoint workloads: they speak HBONE themselves and are never enrolled. */
  readonly waypointWorkloads: readonly string[];
  /** uids of pods whose injected sidecar terminates HBONE: never enrolled in their node's ztunnel. */
  readonly sidecarWorkloads: readonly string[];
}

/** A pod to run: a Pod object, or one replica of a Deployment (named `<deployment>-<index>`). */
export interface PodInstance {
  /** `<ns>/<name>`: the Placement key. */
  readonly key: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly spec: PodSpec;
  readonly owner: { readonly kind: 'Pod' | 'Deployment' | 'Gateway'; readonly name: string };
  /** The object diagnostics about this pod are reported against. */
  readonly source: K8sObject;
}

/** Collects diagnostics against objects, with the object's file and line. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];
  readonly #seen = new Set<string>();

  error(obj: K8sObject, code: DiagnosticCode, field: string, message: string): void {
    this.#push('error', obj, code, field, message);
  }

  warn(obj: K8sObject, code: DiagnosticCode, field: string, message: string): void {
    this.#push('warning', obj, code, field, message);
  }

  #push(severity: Diagnostic['severity'], obj: K8sObject, code: DiagnosticCode, field: string, message: string): void {
    // The same finding about a Deployment would otherwise repeat once per replica.
    const id = `${refOf(obj)}|${field}|${message}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    this.list.push({
      severity,
      code,
      object: refOf(obj),
      field,
      message,
      file: obj.origin.file,
      line: obj.origin.line,
    });
  }
}
