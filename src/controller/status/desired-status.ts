// What Ferry wants the `status` of each object it implements to say, computed from one translation, like a
// Gateway API implementation (docs/architecture.md "Kubernetes source"): HTTPRoute (and GRPCRoute, TCPRoute) `status.parents[]` (one entry per
// parentRef Ferry serves, controllerName ferry.dev/waypoint-controller, conditions Accepted / ResolvedRefs /
// PartiallyInvalid with reasons, observedGeneration) through gateway-api's routeStatusToK8s; Gateways of
// class ferry-waypoint Accepted + Programmed with status.addresses; GatewayClasses naming Ferry's controller
// Accepted. And how a desired status merges with the one stored: parents of other controllers are kept,
// a condition whose status did not change keeps its lastTransitionTime, and two statuses are equal when
// they differ only in lastTransitionTime (then nothing is written: no ping-pong between replicas). Pure.
import { routeStatusToK8s } from '../../../gateway-api/status.ts';
import { FERRY_CONTROLLER_NAME } from '../../../gateway-api/types.ts';
import type { ClusterState, K8sKind } from '../sources/types.ts';
import { waypointPodName } from '../translate/pods.ts';
import type { TranslateResult } from '../translate/types.ts';
import { WAYPOINT_GATEWAY_CLASS } from '../translate/waypoints.ts';

export type StatusKind = Extract<K8sKind, 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute' | 'Gateway' | 'GatewayClass'>;
type RouteKindName = Extract<StatusKind, 'HTTPRoute' | 'GRPCRoute' | 'TCPRoute'>;
const isRouteKind = (k: StatusKind): k is RouteKindName => k === 'HTTPRoute' || k === 'GRPCRoute' || k === 'TCPRoute';

export interface Condition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime?: string;
}

/** The status Ferry wants on one object; `status` has lastTransitionTime left to the merge. */
export interface DesiredStatus {
  readonly kind: StatusKind;
  readonly namespace: string;
  readonly name: string;
  readonly status: Record<string, unknown>;
}

type Obj = { readonly [key: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every status Ferry owns, from the cluster state and its translation. */
export function desiredStatuses(state: ClusterState, result: TranslateResult): DesiredStatus[] {
  const out: DesiredStatus[] = [];
  const routes = new Map(
    [...state.httpRoutes, ...state.grpcRoutes, ...state.tcpRoutes].map((r) => [
      `${r.kind}/${r.metadata.namespace}/${r.metadata.name}`,
      r,
    ]),
  );
  for (const rs of result.routeStatus) {
    const kind = rs.kind ?? 'HTTPRoute';
    const route = routes.get(`${kind}/${rs.key}`);
    if (route === undefined) continue;
    const { namespace, name, generation } = route.metadata;
    out.push({ kind: route.kind, namespace, name, status: routeStatusToK8s(rs, generation ?? 0) });
  }
  const waypoints = new Set(result.waypoints.map((w) => `${w.namespace}/${w.name}`));
  for (const gw of state.gateways) {
    if (gw.spec.gatewayClassName !== WAYPOINT_GATEWAY_CLASS) continue;
    const { namespace, name } = gw.metadata;
    const g = gw.metadata.generation ?? 0;
    const valid = waypoints.has(`${namespace}/${name}`);
    const addresses = gatewayAddresses(state, result, namespace, name);
    const accepted: Condition = valid
      ? { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'waypoint accepted', observedGeneration: g }
      : {
          type: 'Accepted',
          status: 'False',
          reason: 'ListenersNotValid',
          message: 'a ferry-waypoint Gateway needs the listener {name: mesh, port: 15008, protocol: HBONE}',
          observedGeneration: g,
        };
    const programmed: Condition = !valid
      ? { type: 'Programmed', status: 'False', reason: 'Invalid', message: 'not accepted', observedGeneration: g }
      : addresses.length > 0
        ? {
            type: 'Programmed',
            status: 'True',
            reason: 'Programmed',
            message: 'waypoint running',
            observedGeneration: g,
          }
        : {
            type: 'Programmed',
            status: 'False',
            reason: 'AddressNotAssigned',
            message: 'the waypoint has no address yet',
            observedGeneration: g,
          };
    out.push({ kind: 'Gateway', namespace, name, status: { addresses, conditions: [accepted, programmed] } });
  }
  for (const gc of state.gatewayClasses) {
    if (gc.spec.controllerName !== FERRY_CONTROLLER_NAME) continue;
    const g = gc.metadata.generation ?? 0;
    out.push({
      kind: 'GatewayClass',
      namespace: '',
      name: gc.metadata.name,
      status: {
        conditions: [
          { type: 'Accepted', status: 'True', reason: 'Accepted', message: 'handled by Ferry', observedGeneration: g },
        ],
      },
    });
  }
  return out;
}

/**
 * The waypoint's address: its Service's ClusterIP when a Service of the Gateway's name exists (what Istio
 * reports), else the IPs of the waypoint pod's workload.
 */
function gatewayAddresses(state: ClusterState, result: TranslateResult, ns: string, name: string): Obj[] {
  const svc = state.services.find((s) => s.metadata.namespace === ns && s.metadata.name === name);
  if (svc !== undefined && svc.spec.clusterIP !== null && svc.spec.clusterIP !== 'None') {
    return [{ type: 'IPAddress', value: svc.spec.clusterIP }];
  }
  const pod = waypointPodName(name);
  const w = result.config.workloads.find((x) => x.namespace === ns && x.name === pod);
  return (w?.addresses ?? []).map((value) => ({ type: 'IPAddress', value }));
}

/**
 * The status to store: `desired` merged into `current` (the object's status as stored). HTTPRoute parents
 * of other controllers stay as they are; conditions keep their lastTransitionTime while their status stays.
 */
export function mergeStatus(kind: StatusKind, current: unknown, desired: Record<string, unknown>, now: string): Obj {
  const cur = isObj(current) ? current : {};
  if (isRouteKind(kind)) {
    const curParents = Array.isArray(cur.parents) ? cur.parents.filter(isObj) : [];
    const others = curParents.filter((p) => p.controllerName !== FERRY_CONTROLLER_NAME);
    const mine = (Array.isArray(desired.parents) ? desired.parents.filter(isObj) : []).map((p) => {
      const before = curParents.find(
        (c) => c.controllerName === FERRY_CONTROLLER_NAME && canonical(c.parentRef) === canonical(p.parentRef),
      );
      return { ...p, conditions: mergeConditions(before?.conditions, p.conditions, now) };
    });
    return { ...cur, parents: [...others, ...mine] };
  }
  return { ...cur, ...desired, conditions: mergeConditions(cur.conditions, desired.conditions, now) };
}

/** Conditions with lastTransitionTime: the old one while the condition's status is unchanged, else `now`. */
export function mergeConditions(current: unknown, desired: unknown, now: string): Condition[] {
  const before = Array.isArray(current) ? current.filter(isObj) : [];
  return (Array.isArray(desired) ? desired.filter(isObj) : []).map((d) => {
    const old = before.find((c) => c.type === d.type);
    const keep = old !== undefined && old.status === d.status && typeof old.lastTransitionTime === 'string';
    return { ...(d as unknown as Condition), lastTransitionTime: keep ? String(old.lastTransitionTime) : now };
  });
}

/** Equal as statuses: deep equality that ignores every lastTransitionTime and the order of object keys. */
export function statusEqual(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  return JSON.stringify(strip(v));
}

function strip(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(strip);
  if (!isObj(v)) return v;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort()) {
    if (k === 'lastTransitionTime' || v[k] === undefined) continue;
    out[k] = strip(v[k]);
  }
  return out;
}

export type StatusWritePlan =
  | { readonly write: false }
  | { readonly write: true; readonly status: Obj; readonly resourceVersion: string };

/** Whether to write: never when the merged status equals the stored one (lastTransitionTime aside). */
export function planStatusWrite(
  kind: StatusKind,
  stored: Obj | undefined,
  desired: Record<string, unknown>,
  now: string,
): StatusWritePlan {
  if (stored === undefined) return { write: false }; // deleted meanwhile: nothing to write to
  const meta = isObj(stored.metadata) ? stored.metadata : {};
  const merged = mergeStatus(kind, stored.status, desired, now);
  if (statusEqual(merged, stored.status ?? {})) return { write: false };
  return {
    write: true,
    status: merged,
    resourceVersion: typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '',
  };
}

/** After a failed write: retry (re-read first) on 409 Conflict up to `maxAttempts`; give up otherwise. */
export function shouldRetryStatusWrite(httpStatus: number, attempt: number, maxAttempts = 5): boolean {
  return httpStatus === 409 && attempt + 1 < maxAttempts;
}
