// What `ferry status` shows of a cluster on its Kubernetes API beyond its pods: Services with their
// cluster IPs, AuthorizationPolicies and their scope, ferry-waypoint Gateways with Programmed, and the
// status Ferry wrote on each HTTPRoute/GRPCRoute parent. Read from the API (the source of truth), turned
// into rows by pure functions, so the same lines as on the file-based cluster come out.
import { formatRouteStatus } from '../../gateway-api/status.ts';
import type { RouteKind, RouteParentStatus } from '../../gateway-api/types.ts';
import { FERRY_CONTROLLER_NAME } from '../../gateway-api/types.ts';
import { isJson, type Json, type KubeClient } from '../kube/client.ts';
import { DEFAULT_ROOT_NAMESPACE } from '../mesh/authz/strict.ts';

export interface ApiServiceRow {
  readonly namespace: string;
  readonly name: string;
  /** The ClusterIP (the mesh's VIP); null for headless Services. */
  readonly vip: string | null;
  readonly ports: readonly string[];
}

export interface ApiPolicyRow {
  readonly namespace: string;
  readonly name: string;
  readonly action: string;
  readonly scope: 'WorkloadSelector' | 'Namespace' | 'Global' | 'Waypoint';
}

export interface ApiWaypointRow {
  readonly namespace: string;
  readonly name: string;
  /** `istio.io/waypoint-for` (service when absent, as Istio). */
  readonly for: string;
  readonly programmed: boolean;
  readonly address: string | null;
}

export interface ApiMeshView {
  readonly services: readonly ApiServiceRow[];
  readonly policies: readonly ApiPolicyRow[];
  readonly waypoints: readonly ApiWaypointRow[];
  /** One line per route parent, as `ferry status` prints them on every cluster. */
  readonly routes: readonly string[];
}

const WAYPOINT_CLASS = 'ferry-waypoint';

function meta(o: Json): { namespace: string; name: string; labels: Json } {
  const m = isJson(o.metadata) ? o.metadata : {};
  return {
    namespace: typeof m.namespace === 'string' ? m.namespace : '',
    name: typeof m.name === 'string' ? m.name : '',
    labels: isJson(m.labels) ? m.labels : {},
  };
}

function specOf(o: Json): Json {
  return isJson(o.spec) ? o.spec : {};
}

function jsonArray(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isJson) : [];
}

export function serviceRows(items: readonly Json[]): ApiServiceRow[] {
  return items.map((s) => {
    const spec = specOf(s);
    const ip = typeof spec.clusterIP === 'string' && spec.clusterIP !== 'None' ? spec.clusterIP : null;
    const ports = jsonArray(spec.ports).map((p) => `${p.port}→${p.targetPort ?? p.port}`);
    return { ...pick(meta(s)), vip: ip, ports };
  });
}

export function policyRows(items: readonly Json[], rootNamespace = DEFAULT_ROOT_NAMESPACE): ApiPolicyRow[] {
  return items.map((p) => {
    const spec = specOf(p);
    const m = meta(p);
    const scope: ApiPolicyRow['scope'] =
      jsonArray(spec.targetRefs).length > 0 || isJson(spec.targetRef)
        ? 'Waypoint'
        : isJson(spec.selector)
          ? 'WorkloadSelector'
          : m.namespace === rootNamespace
            ? 'Global'
            : 'Namespace';
    return { ...pick(m), action: typeof spec.action === 'string' ? spec.action : 'ALLOW', scope };
  });
}

export function waypointRows(gateways: readonly Json[]): ApiWaypointRow[] {
  return gateways
    .filter((g) => specOf(g).gatewayClassName === WAYPOINT_CLASS)
    .map((g) => {
      const m = meta(g);
      const status = isJson(g.status) ? g.status : {};
      const programmed = jsonArray(status.conditions).some((c) => c.type === 'Programmed' && c.status === 'True');
      const address = jsonArray(status.addresses).find((a) => typeof a.value === 'string')?.value;
      const waypointFor = m.labels['istio.io/waypoint-for'];
      return {
        ...pick(m),
        for: typeof waypointFor === 'string' ? waypointFor : 'service',
        programmed,
        address: typeof address === 'string' ? address : null,
      };
    });
}

/** Ferry's parents of a route's `status.parents` (other controllers' entries are theirs to show). */
export function routeLines(kind: RouteKind, routes: readonly Json[]): string[] {
  return routes.flatMap((r) => {
    const m = meta(r);
    const status = isJson(r.status) ? r.status : {};
    const parents = jsonArray(status.parents)
      .filter((p) => p.controllerName === FERRY_CONTROLLER_NAME && isJson(p.parentRef))
      .map((p) => p as unknown as RouteParentStatus);
    return formatRouteStatus({ kind, key: `${m.namespace}/${m.name}`, parents });
  });
}

function pick(m: { namespace: string; name: string }): { namespace: string; name: string } {
  return { namespace: m.namespace, name: m.name };
}

/** Lists a kind; an API without that kind (its CRD not installed) gives none. */
async function listOrNone(client: KubeClient, path: string): Promise<readonly Json[]> {
  try {
    return (await client.list(path)).items;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
}

export async function apiMeshView(client: KubeClient): Promise<ApiMeshView> {
  const [services, policies, gateways, httpRoutes, grpcRoutes] = await Promise.all([
    listOrNone(client, '/api/v1/services'),
    listOrNone(client, '/apis/security.istio.io/v1/authorizationpolicies'),
    listOrNone(client, '/apis/gateway.networking.k8s.io/v1/gateways'),
    listOrNone(client, '/apis/gateway.networking.k8s.io/v1/httproutes'),
    listOrNone(client, '/apis/gateway.networking.k8s.io/v1/grpcroutes'),
  ]);
  return {
    services: serviceRows(services),
    policies: policyRows(policies),
    waypoints: waypointRows(gateways),
    routes: [...routeLines('HTTPRoute', httpRoutes), ...routeLines('GRPCRoute', grpcRoutes)],
  };
}

/** The human form, after the pods. */
export function printMeshView(view: ApiMeshView, out: (line: string) => void): void {
  out('services:');
  for (const s of view.services)
    out(`  ${`${s.namespace}/${s.name}`.padEnd(40)} ${(s.vip ?? 'headless').padEnd(15)} ${s.ports.join(' ')}`);
  if (view.policies.length > 0) {
    out('policies:');
    for (const p of view.policies) out(`  ${`${p.namespace}/${p.name}`.padEnd(40)} ${p.action} (${p.scope})`);
  }
  if (view.waypoints.length > 0) {
    out('waypoints:');
    for (const w of view.waypoints) {
      const state = w.programmed ? `programmed ${w.address ?? ''}`.trimEnd() : 'not programmed';
      out(`  ${`${w.namespace}/${w.name}`.padEnd(40)} for ${w.for}  ${state}`);
    }
  }
  if (view.routes.length > 0) {
    out('routes:');
    for (const r of view.routes) out(`  ${r}`);
  }
}
