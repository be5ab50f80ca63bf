// Which routes apply to a Service port at a waypoint, and in which order their matches are tried
// (docs/operations.md "Gateway API support, by kind and field"). Three decisions, in this order:
// 1. Whose routes (GEP-1294, "Namespace boundaries"): a request from namespace A to a Service in namespace
//    B ≠ A gets the consumer routes of A (routes in A whose parent is that Service port) when there are any,
//    and only those; otherwise the producer routes (routes in B whose parent is the Service) plus the routes
//    bound to the waypoint Gateway itself.
// 2. Which kind: only one route kind applies to a port, the most specific one present, GRPCRoute >
//    HTTPRoute > TCPRoute (GEP-1294 route-type specificity); Service-bound routes decide it, and routes
//    bound to the waypoint Gateway join only when they are of that kind (or when no Service-bound route
//    exists). route-conflicts.ts reports the losers in status, with the same rule.
// 3. Which entry: one per (rule, match), sorted by the kind's precedence. HTTPRoute: Exact > PathPrefix
//    (longer first) > RegularExpression (longer first, as Istio), then method, more headers, more query
//    params. GRPCRoute: more characters of service, then of method, then more headers. Ties go to the older
//    route, then `ns/name`, then rule and match order. A TCPRoute has no matches: the oldest one wins.
// Pure; tables are built lazily per (Service port, consumer namespace).
import type { CompiledRoute, RouteKind, RouteMatch, RouteSelection, RouteTable, TcpRouteTable } from './types.ts';
import { ROUTE_KINDS } from './types.ts';

export interface RouteTables {
  /**
   * HTTPRoutes or GRPCRoutes for a Service port reached through this waypoint, as seen by a client in
   * `sourceNamespace` (producer routes when absent); null = no HTTP/gRPC route applies (pass-through, or a
   * TCPRoute: see tcpForServicePort).
   */
  forServicePort(namespace: string, name: string, port: number, sourceNamespace?: string): RouteTable | null;
  /** The TCPRoute in effect for that port and client, when TCPRoute is the kind that applies there. */
  tcpForServicePort(namespace: string, name: string, port: number, sourceNamespace?: string): TcpRouteTable | null;
  readonly routes: readonly CompiledRoute[];
}

const PATH_RANK = { Exact: 3, PathPrefix: 2, RegularExpression: 1 } as const;

/** Negative when `a` takes precedence over `b` (match-level criteria only). */
export function compareMatches(a: RouteMatch, b: RouteMatch): number {
  return (
    PATH_RANK[b.path.type] - PATH_RANK[a.path.type] ||
    b.path.value.length - a.path.value.length ||
    Number(b.method !== null) - Number(a.method !== null) ||
    b.headers.length - a.headers.length ||
    b.queryParams.length - a.queryParams.length
  );
}

/** Negative when GRPCRoute match `a` takes precedence over `b`: service characters, method characters, headers. */
export function compareGrpcMatches(a: RouteMatch, b: RouteMatch): number {
  return (
    (b.grpc?.service?.length ?? 0) - (a.grpc?.service?.length ?? 0) ||
    (b.grpc?.method?.length ?? 0) - (a.grpc?.method?.length ?? 0) ||
    b.headers.length - a.headers.length
  );
}

export const kindOf = (route: { readonly kind?: RouteKind }): RouteKind => route.kind ?? 'HTTPRoute';

/** The most specific kind among `kinds` (GRPCRoute > HTTPRoute > TCPRoute), or null when empty. */
export function winningKind(kinds: Iterable<RouteKind>): RouteKind | null {
  const present = new Set(kinds);
  return ROUTE_KINDS.find((k) => present.has(k)) ?? null;
}

/** Oldest first; a route without a timestamp after any with one; then first seen; then `ns/name`. */
export function compareRoutes(a: CompiledRoute, b: CompiledRoute): number {
  const ta = a.creationTimestampMs;
  const tb = b.creationTimestampMs;
  if (ta !== tb) {
    if (ta === null) return 1;
    if (tb === null) return -1;
    return ta - tb;
  }
  if (a.sequence !== b.sequence) return a.sequence - b.sequence;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** How `route` attaches to a Service port: through a Service parentRef, through the waypoint Gateway, or not. */
function attachment(
  route: CompiledRoute,
  waypoint: { readonly namespace: string; readonly name: string },
  ns: string,
  name: string,
  port: number,
): 'service' | 'gateway' | null {
  let out: 'service' | 'gateway' | null = null;
  for (const p of route.parents) {
    if (p.kind === 'Service') {
      if (p.namespace === ns && p.name === name && (p.port === null || p.port === port)) return 'service';
    } else if (p.namespace === waypoint.namespace && p.name === waypoint.name) out = 'gateway';
  }
  return out;
}

interface PortRoutes {
  readonly kind: RouteKind | null;
  /** Routes of `kind` that apply, oldest first. */
  readonly routes: readonly CompiledRoute[];
}

export function buildRouteTables(
  routes: readonly CompiledRoute[],
  waypoint: { readonly namespace: string; readonly name: string },
): RouteTables {
  const ordered = [...routes].sort(compareRoutes);
  const groups = new Map<string, PortRoutes>();
  const tables = new Map<string, RouteTable | null>();
  const hasConsumer = new Map<string, boolean>();
  // Namespaces with a consumer route somewhere: most requests skip the consumer scan.
  const consumerNamespaces = new Set(
    ordered.flatMap((r) =>
      r.parents.some((p) => p.kind === 'Service' && p.namespace !== r.namespace) ? [r.namespace] : [],
    ),
  );
  const routesFor = (
    ns: string,
    name: string,
    port: number,
    source: string | undefined,
  ): { key: string; group: PortRoutes } => {
    let consumer = false;
    if (source !== undefined && source !== ns && consumerNamespaces.has(source)) {
      const probe = `${ns}/${name}:${port}?${source}`;
      const known = hasConsumer.get(probe);
      consumer =
        known ?? ordered.some((r) => r.namespace === source && attachment(r, waypoint, ns, name, port) === 'service');
      if (known === undefined) hasConsumer.set(probe, consumer);
    }
    const key = `${ns}/${name}:${port}|${consumer ? source : ''}`;
    const hit = groups.get(key);
    if (hit !== undefined) return { key, group: hit };
    const attached: { route: CompiledRoute; via: 'service' | 'gateway' }[] = [];
    for (const r of ordered) {
      const via = attachment(r, waypoint, ns, name, port);
      if (via === null) continue;
      if (consumer ? r.namespace === source && via === 'service' : via === 'gateway' || r.namespace === ns) {
        attached.push({ route: r, via });
      }
    }
    const serviceBound = attached.filter((a) => a.via === 'service');
    const kind = winningKind((serviceBound.length > 0 ? serviceBound : attached).map((a) => kindOf(a.route)));
    const group = { kind, routes: attached.filter((a) => kindOf(a.route) === kind).map((a) => a.route) };
    groups.set(key, group);
    return { key, group };
  };
  return {
    routes: ordered,
    forServicePort(namespace, name, port, sourceNamespace) {
      const { key, group } = routesFor(namespace, name, port, sourceNamespace);
      const hit = tables.get(key);
      if (hit !== undefined) return hit;
      let table: RouteTable | null = null;
      if (group.kind === 'HTTPRoute' || group.kind === 'GRPCRoute') {
        const compare = group.kind === 'GRPCRoute' ? compareGrpcMatches : compareMatches;
        const entries: { sel: RouteSelection; order: number }[] = [];
        for (const route of group.routes) {
          for (const rule of route.rules) {
            for (const match of rule.matches) entries.push({ sel: { rule, match }, order: entries.length });
          }
        }
        // Route order, rule order and match order are already in `order`: a stable sort on match criteria.
        entries.sort((a, b) => compare(a.sel.match, b.sel.match) || a.order - b.order);
        table = entries.length === 0 ? null : { kind: group.kind, entries: entries.map((e) => e.sel) };
      }
      tables.set(key, table);
      return table;
    },
    tcpForServicePort(namespace, name, port, sourceNamespace) {
      const { group } = routesFor(namespace, name, port, sourceNamespace);
      if (group.kind !== 'TCPRoute') return null;
      const route = group.routes[0];
      const rule = route?.rules[0];
      return route === undefined || rule === undefined ? null : { route: route.key, rule };
    },
  };
}
