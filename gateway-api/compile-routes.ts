// Every route a waypoint (or the controller, for status) holds → compiled routes plus statuses, with the
// conflicts between routes settled the way route-table.ts settles them (docs/operations.md, "Gateway API
// support, by kind and field"): on one Service port, for one group of clients (the producer routes, or one
// namespace's consumer routes), only the most specific route kind applies — GRPCRoute > HTTPRoute > TCPRoute (GEP-1294) — and of
// several TCPRoutes only the oldest. A parentRef whose every port is lost that way gets `Accepted=False`,
// reason `Conflicted`, naming the route that wins; one that loses some of its ports stays Accepted and
// its message names them. Conflicts are computed between Service-bound routes only: routes bound to the
// waypoint Gateway join a port only when they are of the kind that applies there. Pure.
import { type CompileContext, type CompileResult, compileHttpRoute, compileRouteOf } from './compile.ts';
import { compileGrpcRule } from './compile-grpc.ts';
import type { RouteProblem } from './compile-rule.ts';
import { compileTcpRule } from './compile-tcp.ts';
import { compareRoutes, kindOf, winningKind } from './route-table.ts';
import type { CompiledRoute, ObjectInput, RouteKind, RouteParentStatus, RouteStatus } from './types.ts';

export interface RouteInput {
  readonly kind: RouteKind;
  readonly input: ObjectInput;
}

export interface CompiledRoutes {
  /** Routes with at least one accepted parent and one valid rule, for buildRouteTables. */
  readonly routes: readonly CompiledRoute[];
  /** One per input, in input order. */
  readonly statuses: readonly RouteStatus[];
  /** `object` is `<Kind>/<ns>/<name>`. */
  readonly problems: readonly { readonly object: string; readonly problem: RouteProblem }[];
}

export function compileOne(kind: RouteKind, input: ObjectInput, ctx: CompileContext): CompileResult {
  switch (kind) {
    case 'HTTPRoute':
      return compileHttpRoute(input, ctx);
    case 'GRPCRoute':
      return compileRouteOf('GRPCRoute', input, ctx, compileGrpcRule);
    case 'TCPRoute':
      return compileRouteOf('TCPRoute', input, ctx, compileTcpRule);
  }
}

interface Claim {
  readonly result: number;
  readonly parent: number;
  readonly route: CompiledRoute;
  readonly port: number;
}

export function compileRoutes(inputs: readonly RouteInput[], ctx: CompileContext): CompiledRoutes {
  const results = inputs.map((i) => compileOne(i.kind, i.input, ctx));
  const problems = results.flatMap((r, i) =>
    r.problems.map((problem) => ({ object: `${inputs[i]?.kind}/${r.status.key}`, problem })),
  );
  // Every (Service port, client group) each accepted Service parent claims.
  const claims = new Map<string, Claim[]>();
  results.forEach((r, ri) => {
    r.route?.parents.forEach((p, pi) => {
      if (p.kind !== 'Service' || r.route === null) return;
      const ports = p.port === null ? (ctx.service(p.namespace, p.name)?.ports.map((x) => x.port) ?? []) : [p.port];
      const group = r.route.namespace === p.namespace ? '' : r.route.namespace;
      for (const port of ports) {
        const key = `${p.namespace}/${p.name}:${port}|${group}`;
        const list = claims.get(key) ?? [];
        list.push({ result: ri, parent: pi, route: r.route, port });
        claims.set(key, list);
      }
    });
  });
  // What each (result, parent) lost, to whom.
  const lost = new Map<string, { port: number; winner: CompiledRoute }[]>();
  for (const list of claims.values()) {
    const kind = winningKind(list.map((c) => kindOf(c.route)));
    const ofKind = list.filter((c) => kindOf(c.route) === kind).sort((a, b) => compareRoutes(a.route, b.route));
    const winner = ofKind[0]?.route;
    if (winner === undefined) continue;
    for (const c of list) {
      const loses = kindOf(c.route) !== kind || (kind === 'TCPRoute' && c.route !== winner);
      if (!loses) continue;
      const key = `${c.result}/${c.parent}`;
      lost.set(key, [...(lost.get(key) ?? []), { port: c.port, winner }]);
    }
  }
  const statuses = results.map((r, ri) => {
    if (r.route === null) return r.status;
    const parents = [...r.status.parents];
    let changed = false;
    r.route.parents.forEach((p, pi) => {
      const losses = lost.get(`${ri}/${pi}`);
      const si = r.parentStatusIndex?.[pi];
      if (losses === undefined || si === undefined || p.kind !== 'Service') return;
      const entry = parents[si];
      if (entry === undefined) return;
      const all = p.port === null ? (ctx.service(p.namespace, p.name)?.ports.length ?? 0) : 1;
      const detail = losses.map((l) => `port ${l.port}: ${kindOf(l.winner)} ${l.winner.key} applies there`).join('; ');
      parents[si] = amendAccepted(entry, losses.length >= all, detail);
      changed = true;
    });
    return changed ? { ...r.status, parents } : r.status;
  });
  const routes = results.flatMap((r) => (r.route === null ? [] : [r.route]));
  return { routes, statuses, problems };
}

function amendAccepted(entry: RouteParentStatus, allLost: boolean, detail: string): RouteParentStatus {
  const conditions = entry.conditions.map((c) => {
    if (c.type !== 'Accepted' || c.status !== 'True') return c;
    return allLost
      ? {
          type: 'Accepted' as const,
          status: 'False' as const,
          reason: 'Conflicted',
          message: `only one route kind applies to a Service port (GRPCRoute > HTTPRoute > TCPRoute, oldest TCPRoute): ${detail}`,
        }
      : { ...c, message: `${c.message}; not in effect on ${detail}` };
  });
  return { ...entry, conditions };
}
