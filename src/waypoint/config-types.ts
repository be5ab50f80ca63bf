// What a waypoint serves from (docs/architecture.md "Processes and ports", "Policy and enrollment"): the mesh (workloads and services, the same model the
// ztunnel uses, to find the parent Service by VIP:port and the endpoints of backends) plus the Gateway API
// routes and the L7 AuthorizationPolicies, carried as their Kubernetes objects and compiled on arrival with
// the same gateway-api/ code the controller computes route status with. Types only.
import type { ObjectInput } from '../../gateway-api/types.ts';
import type { MeshConfig } from '../mesh/types.ts';

/** The waypoint this process is: its Gateway. */
export interface WaypointIdentity {
  readonly namespace: string;
  /** Gateway name (also its service account, as Istio's waypoints use). */
  readonly name: string;
}

export interface WaypointConfig {
  readonly mesh: MeshConfig;
  /** HTTPRoutes (gateway.networking.k8s.io/v1), all of them; each is compiled and attached by the waypoint. */
  readonly httpRoutes: readonly ObjectInput[];
  /** GRPCRoutes (gateway.networking.k8s.io/v1); absent = none. */
  readonly grpcRoutes?: readonly ObjectInput[];
  /** TCPRoutes (gateway.networking.k8s.io/v1alpha2, experimental); absent = none. */
  readonly tcpRoutes?: readonly ObjectInput[];
  /** AuthorizationPolicies (security.istio.io/v1) that have `targetRef`/`targetRefs`. */
  readonly authorizationPolicies: readonly ObjectInput[];
  /** Gateways of class ferry-waypoint that exist (`ns/name`), for parentRefs of kind Gateway. */
  readonly waypointGateways: readonly string[];
  /**
   * ReferenceGrants as `fromNamespace|toNamespace|toServiceName` (toServiceName `*` = any Service) for
   * HTTPRoutes, with `|GRPCRoute` or `|TCPRoute` appended for those kinds (gateway-api referenceGrantKey).
   */
  readonly referenceGrants: readonly string[];
}

export const EMPTY_WAYPOINT_CONFIG: WaypointConfig = {
  mesh: { workloads: [], services: [], policies: [] },
  httpRoutes: [],
  authorizationPolicies: [],
  waypointGateways: [],
  referenceGrants: [],
};

/** Where a waypoint's config comes from: a YAML file (tests, single node) or the controller (delta xDS). */
export interface WaypointConfigSource {
  /** The last good config (EMPTY_WAYPOINT_CONFIG until the first one arrived). */
  current(): WaypointConfig;
  /** Called after each accepted change, with the new config. Returns an unsubscribe function. */
  onChange(listener: (config: WaypointConfig) => void): () => void;
  /** Resolves once the first config was accepted (readiness waits on it). */
  whenSynced(): Promise<void>;
  close(): Promise<void>;
}
