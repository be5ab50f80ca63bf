// Self-check of the converted HTTPRoutes (docs/migration.md "Review"): each one is compiled by Ferry's own
// HTTPRoute compiler against the Services it will see (the input's and the generated per-subset ones) and
// the generated waypoint Gateways, so a route the waypoint would reject is a blocker here, not a surprise
// after `kubectl apply`. Then the rule order: Istio tries `http[]` routes in order, Gateway API by match
// precedence (exact path, longest prefix, method, headers, query params); where a later rule now wins over
// an earlier one for requests both may match, routing differs, which is a blocker too. Pure.
import { type CompileContext, compileHttpRoute, type ServicePortInfo } from '../../gateway-api/compile.ts';
import { pathPrefixMatches } from '../../gateway-api/match.ts';
import { compareMatches } from '../../gateway-api/route-table.ts';
import type { CompiledRoute, HeaderMatch, PathMatch, RouteMatch } from '../../gateway-api/types.ts';
import { type ConvertedObject, type Finding, type Inventory, isObj, type Obj } from './types.ts';

/** The compile context the converted objects will meet: input Services + generated Services and Gateways. */
export function compileContextFor(inv: Inventory, objects: readonly ConvertedObject[]): CompileContext {
  const services = new Map<string, ServicePortInfo[]>();
  for (const s of inv.services) {
    services.set(
      `${s.metadata.namespace}/${s.metadata.name}`,
      s.spec.ports.map((p) => ({ port: p.port, name: p.name, appProtocol: p.appProtocol ?? null })),
    );
  }
  const gateways = new Set<string>();
  for (const o of objects) {
    const m = o.manifest;
    const meta = m.metadata as Obj;
    const key = `${String(meta.namespace)}/${String(meta.name)}`;
    if (m.kind === 'Service' && isObj(m.spec) && Array.isArray(m.spec.ports)) {
      services.set(
        key,
        m.spec.ports.map((p: Obj) => ({
          port: p.port as number,
          name: typeof p.name === 'string' ? p.name : null,
          appProtocol: typeof p.appProtocol === 'string' ? p.appProtocol : null,
        })),
      );
    }
    if (m.kind === 'Gateway') gateways.add(key);
  }
  return {
    service: (ns, name) => {
      const ports = services.get(`${ns}/${name}`);
      return ports === undefined ? undefined : { ports };
    },
    isWaypointGateway: (ns, name) => gateways.has(`${ns}/${name}`),
    referenceGrantAllows: () => false,
  };
}

/** Compiles every converted HTTPRoute; findings for rejections and for rule-order changes. */
export function verifyRoutes(inv: Inventory, objects: readonly ConvertedObject[]): Finding[] {
  const ctx = compileContextFor(inv, objects);
  const out: Finding[] = [];
  objects.forEach((o, sequence) => {
    if (o.manifest.kind !== 'HTTPRoute') return;
    const meta = o.manifest.metadata as Obj;
    const name = String(meta.name);
    const object = o.from[0] ?? `HTTPRoute/${o.namespace}/${name}`;
    const result = compileHttpRoute(
      { namespace: o.namespace, name, creationTimestampMs: null, sequence, spec: o.manifest.spec },
      ctx,
    );
    for (const p of result.problems) {
      out.push({
        severity: 'blocker',
        category: 'route',
        namespace: o.namespace,
        object,
        field: '',
        message: `the converted HTTPRoute ${o.namespace}/${name} is not accepted by Ferry's compiler: ${p.field}: ${p.message}`,
      });
    }
    if (result.route !== null) out.push(...orderFindings(result.route, object));
  });
  return out;
}

function orderFindings(route: CompiledRoute, object: string): Finding[] {
  const out: Finding[] = [];
  const rules = route.rules;
  for (let i = 0; i < rules.length; i++) {
    for (let j = i + 1; j < rules.length; j++) {
      const earlier = rules[i];
      const later = rules[j];
      if (earlier === undefined || later === undefined) continue;
      const inverted = later.matches.some((b) =>
        earlier.matches.some((a) => compareMatches(b, a) < 0 && mayOverlap(a, b)),
      );
      if (!inverted) continue;
      out.push({
        severity: 'blocker',
        category: 'route',
        namespace: route.namespace,
        object,
        field: `HTTPRoute ${route.name} rules[${later.ruleIndex}]`,
        message: `rule ${later.ruleIndex} (${describe(later.matches)}) is more specific in Gateway API's precedence than the earlier rule ${earlier.ruleIndex} (${describe(earlier.matches)}), so requests matching both go to rule ${later.ruleIndex}; Istio tried rule ${earlier.ruleIndex} first. Make the matches disjoint before converting`,
      });
    }
  }
  return out;
}

function describe(matches: readonly RouteMatch[]): string {
  return matches
    .map((m) => {
      const parts = [`${m.path.type} ${m.path.value}`];
      if (m.method !== null) parts.push(m.method);
      for (const h of m.headers) parts.push(`header ${h.name}`);
      for (const q of m.queryParams) parts.push(`query ${q.name}`);
      return parts.join(' + ');
    })
    .join(' | ');
}

/** False only when no request can match both (different exact values, disjoint paths, other methods). */
export function mayOverlap(a: RouteMatch, b: RouteMatch): boolean {
  if (a.method !== null && b.method !== null && a.method !== b.method) return false;
  if (disjointValues(a.headers, b.headers) || disjointValues(a.queryParams, b.queryParams)) return false;
  return pathsMayOverlap(a.path, b.path);
}

function disjointValues(a: readonly HeaderMatch[], b: readonly HeaderMatch[]): boolean {
  return a.some((x) =>
    b.some((y) => {
      if (x.name !== y.name) return false;
      if (x.match.type === 'Exact' && y.match.type === 'Exact') return x.match.value !== y.match.value;
      if (x.match.type === 'Exact' && y.match.type === 'RegularExpression') return !y.match.regex.test(x.match.value);
      if (y.match.type === 'Exact' && x.match.type === 'RegularExpression') return !x.match.regex.test(y.match.value);
      return false;
    }),
  );
}

function pathsMayOverlap(a: PathMatch, b: PathMatch): boolean {
  if (a.type === 'Exact' && b.type === 'Exact') return a.value === b.value;
  if (a.type === 'Exact' && b.type === 'PathPrefix') return pathPrefixMatches(b.value, a.value);
  if (b.type === 'Exact' && a.type === 'PathPrefix') return pathPrefixMatches(a.value, b.value);
  if (a.type === 'PathPrefix' && b.type === 'PathPrefix') {
    return pathPrefixMatches(a.value, b.value) || pathPrefixMatches(b.value, a.value);
  }
  if (a.type === 'RegularExpression' && b.type === 'Exact') return a.regex.test(b.value);
  if (b.type === 'RegularExpression' && a.type === 'Exact') return b.regex.test(a.value);
  return true;
}
