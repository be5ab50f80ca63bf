// What waypoints add to the translation (docs/architecture.md "Policy and enrollment", docs/architecture.md "Waypoints (L7)"): each waypoint's
// own Service `<gw>.<ns>.svc.<domain>` (port 15008, what ztunnels resolve a GatewayAddress to) and its pod
// as an HBONE workload (it terminates HBONE itself, so it is never enrolled); the objects waypoints compile
// themselves (HTTP/GRPC/TCPRoutes, AuthorizationPolicies with targetRefs, waypoint Gateways, ReferenceGrants)
// as L7 entries; and the status of every route, computed with the same gateway-api/ compiler (and the same
// conflict rules between route kinds) the waypoints run. Pure.
import type { CompileContext } from '../../../gateway-api/compile.ts';
import { grantsAllow, referenceGrantKey } from '../../../gateway-api/compile-common.ts';
import { compileRoutes, type RouteInput } from '../../../gateway-api/compile-routes.ts';
import type { RouteKind, RouteStatus } from '../../../gateway-api/types.ts';
import { EMPTY_MATCH } from '../../mesh/authz/match.ts';
import type { Authorization, GatewayAddress, PortMap, Service, Workload } from '../../mesh/types.ts';
import { policyKey, serviceKey } from '../../mesh/types.ts';
import type { ClusterState, GrpcRouteObject, HttpRouteObject, TcpRouteObject } from '../sources/types.ts';
import type { Diagnostics, L7Entry, TranslateSettings, WaypointSpec } from './types.ts';
import { HBONE_PORT } from './waypoints.ts';

const hostnameOf = (ns: string, name: string, s: TranslateSettings) => `${name}.${ns}.svc.${s.clusterDomain}`;

/** The waypoint's own Service: no VIP (ztunnels reach it by hostname), port 15008. */
export function waypointService(spec: WaypointSpec, settings: TranslateSettings): Service {
  return {
    name: spec.name,
    namespace: spec.namespace,
    hostname: hostnameOf(spec.namespace, spec.name, settings),
    vips: [],
    ports: [{ servicePort: HBONE_PORT, targetPort: HBONE_PORT }],
    subjectAltNames: [],
    waypoint: null,
  };
}

/** The waypoint pod's workload: HBONE, endpoint of the waypoint's Service, no waypoint of its own. */
export function asWaypointWorkload(w: Workload, spec: WaypointSpec, settings: TranslateSettings): Workload {
  const ports: PortMap = new Map([[HBONE_PORT, HBONE_PORT]]);
  return {
    ...w,
    protocol: 'HBONE',
    waypoint: null,
    authorizationPolicies: [],
    services: new Map([[serviceKey(spec.namespace, hostnameOf(spec.namespace, spec.name, settings)), ports]]),
  };
}

/** Every route of every kind, in the order statuses are reported. */
function routeObjects(state: ClusterState): (HttpRouteObject | GrpcRouteObject | TcpRouteObject)[] {
  return [...state.httpRoutes, ...state.grpcRoutes, ...state.tcpRoutes];
}

export function l7Entries(state: ClusterState, waypoints: readonly WaypointSpec[]): L7Entry[] {
  const out: L7Entry[] = [];
  for (const r of routeObjects(state)) {
    const { namespace, name, creationTimestampMs, sequence } = r.metadata;
    out.push({
      kind: r.kind,
      name: `${r.kind}/${namespace}/${name}`,
      json: JSON.stringify({ namespace, name, creationTimestampMs, sequence, spec: r.spec }),
    });
  }
  for (const p of state.authorizationPolicies) {
    if (!p.spec.hasTargetRefs) continue;
    const { namespace, name, creationTimestampMs, sequence } = p.metadata;
    out.push({
      kind: 'AuthorizationPolicy',
      name: `AuthorizationPolicy/${namespace}/${name}`,
      json: JSON.stringify({ namespace, name, creationTimestampMs, sequence, spec: p.spec.raw ?? {} }),
    });
  }
  for (const g of referenceGrantEntries(state)) {
    out.push({ kind: 'ReferenceGrant', name: `ReferenceGrant/${g}`, json: JSON.stringify(grantJson(g)) });
  }
  for (const w of waypoints) {
    out.push({
      kind: 'Gateway',
      name: `Gateway/${w.namespace}/${w.name}`,
      json: JSON.stringify({ namespace: w.namespace, name: w.name }),
    });
  }
  return out;
}

/** Status of every route against the translated Services; problems also become diagnostics. */
export function routeStatuses(
  state: ClusterState,
  services: readonly Service[],
  waypoints: readonly WaypointSpec[],
  diags: Diagnostics,
): RouteStatus[] {
  const byName = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
  const gateways = new Set(waypoints.map((w) => `${w.namespace}/${w.name}`));
  const grants = new Set(referenceGrantEntries(state));
  const ctx: CompileContext = {
    service: (ns, name) => {
      const s = byName.get(`${ns}/${name}`);
      return s === undefined
        ? undefined
        : {
            ports: s.ports.map((p) => ({
              port: p.servicePort,
              name: p.name ?? null,
              appProtocol: p.appProtocol ?? null,
            })),
          };
    },
    isWaypointGateway: (ns, name) => gateways.has(`${ns}/${name}`),
    referenceGrantAllows: grantsAllow(grants),
  };
  const objects = routeObjects(state);
  const inputs: RouteInput[] = objects.map((r) => ({
    kind: r.kind,
    input: {
      namespace: r.metadata.namespace,
      name: r.metadata.name,
      creationTimestampMs: r.metadata.creationTimestampMs,
      sequence: r.metadata.sequence,
      spec: r.spec,
    },
  }));
  const out = compileRoutes(inputs, ctx);
  const byObject = new Map(objects.map((r) => [`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r]));
  for (const { object, problem: p } of out.problems) {
    const r = byObject.get(object);
    if (r === undefined) continue;
    const report = p.code === 'FERRY_ROUTE_INVALID' ? diags.error.bind(diags) : diags.warn.bind(diags);
    report(r, p.code, p.field, p.message);
  }
  return [...out.statuses];
}

/**
 * Istio's implicit "allow from the waypoint": a workload behind a waypoint that has ALLOW policies would
 * otherwise refuse the waypoint's own connections (they carry the waypoint's identity, not the client's,
 * whose policy the waypoint already enforced). Such workloads get a generated ALLOW policy for the
 * waypoint's identity; workloads without ALLOW policies keep their default-allow untouched.
 */
export function allowFromWaypoints(
  workloads: readonly Workload[],
  services: readonly Service[],
  policies: readonly Authorization[],
  waypoints: readonly WaypointSpec[],
  settings: TranslateSettings,
): { workloads: Workload[]; policies: Authorization[] } {
  if (waypoints.length === 0) return { workloads: [...workloads], policies: [] };
  const byHostname = new Map(waypoints.map((w) => [`${w.namespace}/${hostnameOf(w.namespace, w.name, settings)}`, w]));
  const waypointOf = (g: GatewayAddress | null): WaypointSpec | undefined =>
    g?.destination.kind === 'hostname'
      ? byHostname.get(`${g.destination.namespace}/${g.destination.hostname}`)
      : undefined;
  const serviceWaypoint = new Map<string, WaypointSpec>();
  for (const s of services) {
    const w = waypointOf(s.waypoint);
    if (w !== undefined) serviceWaypoint.set(serviceKey(s.namespace, s.hostname), w);
  }
  const allowIn = (ns: string, keys: readonly string[]): boolean =>
    policies.some(
      (p) =>
        p.action === 'Allow' &&
        (p.scope === 'Global' ||
          (p.scope === 'Namespace' && p.namespace === ns) ||
          (p.scope === 'WorkloadSelector' && keys.includes(policyKey(p.namespace, p.name)))),
    );
  const generated = new Map<string, Authorization>();
  const out = workloads.map((w) => {
    const served = new Set<WaypointSpec>();
    const own = waypointOf(w.waypoint);
    if (own !== undefined) served.add(own);
    for (const key of w.services.keys()) {
      const sw = serviceWaypoint.get(key);
      if (sw !== undefined) served.add(sw);
    }
    if (served.size === 0 || !allowIn(w.namespace, w.authorizationPolicies)) return w;
    const extra: string[] = [];
    for (const wp of served) {
      const name = `istio_allow_waypoint_${wp.namespace}_${wp.name}`;
      const key = policyKey(w.namespace, name);
      extra.push(key);
      if (!generated.has(key)) {
        const principal = `${settings.trustDomain}/ns/${wp.namespace}/sa/${wp.name}`;
        generated.set(key, {
          name,
          namespace: w.namespace,
          scope: 'WorkloadSelector',
          action: 'Allow',
          dryRun: false,
          rules: [[[{ ...EMPTY_MATCH, principals: [{ kind: 'exact', value: principal }] }]]],
        });
      }
    }
    return { ...w, authorizationPolicies: [...w.authorizationPolicies, ...extra] };
  });
  return { workloads: out, policies: [...generated.values()] };
}

const GRANT_FROM_KINDS: readonly RouteKind[] = ['HTTPRoute', 'GRPCRoute', 'TCPRoute'];

/**
 * Route → Service permissions of every ReferenceGrant, as `fromNs|toNs|serviceName` (`*` = any Service in
 * toNs) for HTTPRoutes and `…|GRPCRoute` / `…|TCPRoute` for the others (gateway-api referenceGrantKey):
 * the form the compiler and the waypoints' L7 resources use.
 */
export function referenceGrantEntries(state: ClusterState): string[] {
  const out = new Set<string>();
  for (const g of state.referenceGrants) {
    const froms = g.spec.from.filter(
      (f) => f.group === 'gateway.networking.k8s.io' && GRANT_FROM_KINDS.some((k) => k === f.kind),
    );
    const tos = g.spec.to.filter((t) => (t.group === '' || t.group === 'core') && t.kind === 'Service');
    for (const f of froms) {
      for (const t of tos) {
        out.add(referenceGrantKey(f.namespace, g.metadata.namespace, t.name ?? '*', f.kind as RouteKind));
      }
    }
  }
  return [...out].sort();
}

function grantJson(entry: string): { from: string; to: string; name: string; kind?: string } {
  const [from = '', to = '', name = '', kind] = entry.split('|');
  return kind === undefined ? { from, to, name } : { from, to, name, kind };
}
