// Which routes apply to a Service port at a waypoint, and in which order their matches are tried
// (reference gateway-api-anchor.md §1.9, §6): routes whose parent is the Service (all ports, or that port)
// plus routes whose parent is the waypoint Gateway itself; one entry per (rule, match), sorted by the
// spec's precedence — Exact > PathPrefix (longer first) > RegularExpression (longer first, as Istio), then
// method, more headers, more query params — ties broken by the older route, then `ns/name`, then rule and
// match order. Pure; tables are built lazily per Service port.
import type { CompiledRoute, RouteMatch, RouteSelection, RouteTable } from './types.ts';

export interface RouteTables {
  /** Routes for a Service port reached through this waypoint; null = no route attached (pass-through). */
  forServicePort(namespace: string, name: string, port: number): RouteTable | null;
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

export function buildRouteTables(
  routes: readonly CompiledRoute[],
  waypoint: { readonly namespace: string; readonly name: string },
): RouteTables {
  const ordered = [...routes].sort(compareRoutes);
  const cache = new Map<string, RouteTable | null>();
  const attachedTo = (route: CompiledRoute, ns: string, name: string, port: number): boolean =>
    route.parents.some((p) =>
      p.kind === 'Service'
        ? p.namespace === ns && p.name === name && (p.port === null || p.port === port)
        : p.namespace === waypoint.namespace && p.name === waypoint.name,
    );
  return {
    routes: ordered,
    forServicePort(namespace, name, port) {
      const key = `${namespace}/${name}:${port}`;
      const hit = cache.get(key);
      if (hit !== undefined) return hit;
      const entries: { sel: RouteSelection; order: number }[] = [];
      for (const route of ordered) {
        if (!attachedTo(route, namespace, name, port)) continue;
        for (const rule of route.rules) {
          for (const match of rule.matches) entries.push({ sel: { rule, match }, order: entries.length });
        }
      }
      // Route order, rule order and match order are already in `order`: a stable sort on match criteria.
      entries.sort((a, b) => compareMatches(a.sel.match, b.sel.match) || a.order - b.order);
      const table = entries.length === 0 ? null : { entries: entries.map((e) => e.sel) };
      cache.set(key, table);
      return table;
    },
  };
}
