// VirtualService (mesh routing) → one GAMMA HTTPRoute whose parentRefs are the Services in `hosts`
// (docs/migration.md "VirtualService → HTTPRoute"): each `http[]` route becomes a rule (one rule per match
// when a URI rewrite needs a single PathPrefix match), destinations become weighted backendRefs (subsets via
// per-subset Services), and retries, timeouts, rewrites, redirects, header operations and mirrors become
// their HTTPRoute fields and filters. Whatever has no equivalent is listed on the route and as a finding,
// never dropped silently; a rule or match that cannot be expressed is left out whole (a blocker: routing
// would differ). Pure.
import { describeValue } from '../../gateway-api/compile-common.ts';
import type { ServiceObject } from '../controller/sources/types.ts';
import { convertCors, convertHeaderOps, convertMirrors, convertRedirect, convertRewrite } from './convert-filters.ts';
import { convertMatch, type MatchYaml } from './convert-match.ts';
import { resolveServiceHost } from './istio-values.ts';
import { convertRetries } from './retry.ts';
import type { SubsetServices } from './subsets.ts';
import {
  type BackendYaml,
  type ConvertedObject,
  type Filter,
  type Finding,
  type IstioObject,
  isObj,
  MIGRATED_BY_LABEL,
  MIGRATED_FROM_ANNOTATION,
  type Obj,
  objectRefOf,
} from './types.ts';

export interface RouteContext {
  service(namespace: string, name: string): ServiceObject | undefined;
  readonly subsets: SubsetServices;
}

export interface RouteConversion {
  readonly objects: readonly ConvertedObject[];
  readonly findings: readonly Finding[];
}

/** Gateway API's limit on rules per HTTPRoute (the CRD's maxItems; Ferry's compiler enforces it too). */
const MAX_RULES = 16;
const RULE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HTTP_ROUTE_KEYS = new Set([
  'name',
  'corsPolicy',
  'match',
  'route',
  'redirect',
  'rewrite',
  'timeout',
  'retries',
  'headers',
  'mirror',
  'mirrors',
  'mirrorPercentage',
  'mirrorPercent',
]);

export function convertVirtualService(vs: IstioObject, ctx: RouteContext): RouteConversion {
  const ref = objectRefOf('VirtualService', vs.namespace, vs.name);
  const findings: Finding[] = [];
  const notConverted: string[] = [];
  const find = (severity: Finding['severity'], field: string, message: string): void => {
    findings.push({ severity, category: 'route', namespace: vs.namespace, object: ref, field, message });
    if (severity !== 'info') notConverted.push(`${field}: ${message}`);
  };
  const s = vs.spec;
  const gateways = Array.isArray(s.gateways) ? s.gateways.filter((g) => typeof g === 'string') : null;
  if (gateways !== null && gateways.length > 0 && !gateways.includes('mesh')) {
    find(
      'warning',
      'spec.gateways',
      `applies only to ingress/egress gateways (${gateways.join(', ')}), not to mesh traffic: not converted (gateway routing is out of scope)`,
    );
    return { objects: [], findings };
  }
  if (gateways?.some((g) => g !== 'mesh')) {
    find(
      'warning',
      'spec.gateways',
      `the routing for gateways ${gateways.filter((g) => g !== 'mesh').join(', ')} is not converted; only the mesh part is`,
    );
  }
  if (Array.isArray(s.exportTo)) {
    findings.push({
      severity: 'warning',
      category: 'export-to',
      namespace: vs.namespace,
      object: ref,
      field: 'spec.exportTo',
      message: 'exportTo has no ambient equivalent: an HTTPRoute on a Service applies to every client in the mesh',
    });
  }
  for (const key of ['tcp', 'tls', 'delegate']) {
    if (s[key] !== undefined)
      find(
        'blocker',
        `spec.${key}`,
        key === 'delegate'
          ? 'delegation has no HTTPRoute equivalent'
          : `${key} routes are not converted (no TCPRoute/TLSRoute support in Ferry waypoints)`,
      );
  }
  const parents: Obj[] = [];
  if (!Array.isArray(s.hosts) || s.hosts.length === 0) {
    find('blocker', 'spec.hosts', 'must list the hosts this VirtualService routes: not converted');
  }
  (Array.isArray(s.hosts) ? s.hosts : []).forEach((h, i) => {
    const at = `spec.hosts[${i}]`;
    const svc = typeof h === 'string' ? resolveServiceHost(h, vs.namespace) : null;
    if (svc === null) {
      find(
        'blocker',
        at,
        `${JSON.stringify(h)} is not a Service of this cluster (wildcard or external host): not converted`,
      );
    } else if (svc.namespace !== vs.namespace) {
      find(
        'blocker',
        at,
        `${h} is a Service in namespace ${svc.namespace}: a route for it must live there (Ferry waypoints serve producer routes only); move the VirtualService or convert it there`,
      );
    } else if (ctx.service(svc.namespace, svc.name) === undefined) {
      find(
        'blocker',
        at,
        `Service ${svc.namespace}/${svc.name} is not in the input: pass its manifest with -f (or read the cluster)`,
      );
    } else if (!parents.some((p) => p.name === svc.name)) {
      parents.push({ group: '', kind: 'Service', name: svc.name });
      const grpc = ctx
        .service(svc.namespace, svc.name)
        ?.spec.ports.some((p) => p.appProtocol === 'grpc' || /^grpc(-|$)/.test(p.name ?? ''));
      if (grpc === true) {
        find(
          'info',
          at,
          `Service ${svc.name} serves gRPC: converted as an HTTPRoute (paths /package.Service/Method match as written); a GRPCRoute is not generated`,
        );
      }
    }
  });
  const http = Array.isArray(s.http) ? s.http : [];
  const rules: Obj[] = [];
  const ruleNames = new Set<string>();
  const noRetries: string[] = [];
  http.forEach((route, i) => {
    const at = `spec.http[${i}]`;
    if (!isObj(route)) {
      find('blocker', at, 'must be an object: not converted');
      return;
    }
    rules.push(...convertHttpRoute(route, at, vs, ctx, find, ruleNames, noRetries));
  });
  if (noRetries.length > 0) {
    find(
      'info',
      noRetries.join(', '),
      'no retries stanza: Istio sidecars retry such requests twice by default (connect-failure, refused-stream, 503); a waypoint retries only under an HTTPRoute retry, so add `retry: {attempts: 2, codes: [503]}` if you rely on it',
    );
  }
  if (parents.length === 0 || rules.length === 0) {
    if (http.length > 0 && parents.length > 0) find('blocker', 'spec.http', 'no route could be converted');
    else if (parents.length > 0 && s.tcp === undefined && s.tls === undefined) {
      find('warning', 'spec.http', 'no http routes: nothing to convert (the VirtualService had no effect on HTTP)');
    }
    return { objects: [], findings };
  }
  const objects: ConvertedObject[] = [];
  for (let start = 0, part = 1; start < rules.length; start += MAX_RULES, part++) {
    const name = part === 1 ? vs.name : `${vs.name}-${part}`;
    const manifest = {
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      metadata: {
        name,
        namespace: vs.namespace,
        labels: { [MIGRATED_BY_LABEL]: 'ferry-migrate' },
        annotations: { [MIGRATED_FROM_ANNOTATION]: ref },
      },
      spec: { parentRefs: parents, rules: rules.slice(start, start + MAX_RULES) },
    };
    objects.push({ namespace: vs.namespace, manifest, from: [ref], notConverted: part === 1 ? notConverted : [] });
  }
  if (objects.length > 1) {
    find(
      'warning',
      'spec.http',
      `${rules.length} rules are more than one HTTPRoute holds (${MAX_RULES}): split into ${objects.length} HTTPRoutes`,
    );
  }
  findings.push({
    severity: 'info',
    category: 'route',
    namespace: vs.namespace,
    object: ref,
    field: 'spec.http',
    message: `converted to HTTPRoute ${vs.namespace}/${vs.name} (${rules.length} rule${rules.length === 1 ? '' : 's'}) on Service ${parents.map((p) => p.name).join(', ')}; needs a waypoint`,
  });
  return { objects, findings };
}

type Find = (severity: Finding['severity'], field: string, message: string) => void;

/** A `field: why` line from a converter → a finding (with `suffix` appended to the why). */
function noteTo(find: Find, severity: Finding['severity'], line: string, suffix = ''): void {
  const i = line.indexOf(': ');
  find(severity, line.slice(0, i), `${line.slice(i + 2)}${suffix}`);
}

function convertHttpRoute(
  route: Obj,
  at: string,
  vs: IstioObject,
  ctx: RouteContext,
  find: Find,
  ruleNames: Set<string>,
  noRetries: string[],
): Obj[] {
  for (const key of Object.keys(route)) {
    if (HTTP_ROUTE_KEYS.has(key)) continue;
    if (key === 'fault') find('warning', `${at}.fault`, 'fault injection has no HTTPRoute equivalent: not converted');
    else if (key === 'directResponse') {
      find(
        'blocker',
        `${at}.directResponse`,
        'direct responses have no HTTPRoute equivalent: this route is not converted',
      );
      return [];
    } else if (key === 'delegate') {
      find('blocker', `${at}.delegate`, 'delegation has no HTTPRoute equivalent: this route is not converted');
      return [];
    } else find('warning', `${at}.${key}`, 'no HTTPRoute equivalent: not converted');
  }
  // Matches.
  const matches: MatchYaml[] = [];
  const rawMatches = Array.isArray(route.match) ? route.match : [];
  let notMesh = 0;
  rawMatches.forEach((m, j) => {
    const out = convertMatch(m, `${at}.match[${j}]`);
    if (out.kind === 'match') {
      matches.push(out.match);
      for (const n of out.notes) noteTo(find, 'warning', n);
    } else if (out.kind === 'not-mesh') notMesh++;
    else for (const r of out.reasons) noteTo(find, 'blocker', r, ': this match is not converted');
  });
  if (rawMatches.length > 0 && matches.length === 0) {
    if (notMesh === rawMatches.length) return []; // only for gateways: not mesh routing
    find(
      'blocker',
      `${at}.match`,
      'no match of this route could be converted: the route is not converted (its traffic would fall through to later rules)',
    );
    return [];
  }
  // Backends.
  const backends: BackendYaml[] = [];
  const dests = Array.isArray(route.route) ? route.route : [];
  let backendsOk = true;
  dests.forEach((d, j) => {
    const here = `${at}.route[${j}]`;
    const b = convertDestination(isObj(d) ? d.destination : undefined, `${here}.destination`, vs, ctx);
    if (typeof b === 'string') {
      find('blocker', `${here}.destination`, `${b}: the route is not converted`);
      backendsOk = false;
      return;
    }
    if (isObj(d) && d.weight !== undefined) b.weight = Number.isInteger(d.weight) ? (d.weight as number) : 0;
    if (isObj(d) && isObj(d.headers)) {
      const ops = convertHeaderOps(d.headers, `${here}.headers`);
      for (const r of ops.notConverted) noteTo(find, 'warning', r);
      if (ops.filters.length > 0) b.filters = ops.filters;
    }
    backends.push(b);
  });
  if (!backendsOk) return [];
  // Filters.
  const filters: Filter[] = [];
  if (isObj(route.headers)) {
    const ops = convertHeaderOps(route.headers, `${at}.headers`);
    for (const r of ops.notConverted) noteTo(find, 'warning', r);
    filters.push(...ops.filters);
  }
  if (isObj(route.corsPolicy)) {
    const cors = convertCors(route.corsPolicy, `${at}.corsPolicy`);
    for (const r of cors.notConverted) noteTo(find, 'warning', r);
    if (cors.filter !== null) filters.push(cors.filter);
  }
  const mirrors = convertMirrors(route, at, (d, here) => convertDestination(d, here, vs, ctx));
  for (const r of mirrors.notConverted) noteTo(find, 'warning', r);
  filters.push(...mirrors.filters);
  if (isObj(route.redirect)) {
    const redirect = convertRedirect(route.redirect, `${at}.redirect`);
    if (typeof redirect === 'string') {
      find('blocker', `${at}.redirect`, `${redirect}: the route is not converted`);
      return [];
    }
    filters.push(redirect);
  }
  // Retries and timeouts.
  const rt = convertRetries(route, at);
  for (const r of rt.notConverted) noteTo(find, 'warning', r);
  for (const r of rt.notes) noteTo(find, 'info', r);
  if (rt.implicitDefault) noRetries.push(at);
  const base: Record<string, unknown> = {};
  const name = typeof route.name === 'string' ? route.name.toLowerCase() : null;
  if (name !== null && RULE_NAME.test(name) && name.length <= 253 && !ruleNames.has(name)) {
    base.name = name;
  }
  const tail = (rule: Record<string, unknown>, ruleFilters: Filter[]): Obj => {
    if (ruleFilters.length > 0) rule.filters = ruleFilters;
    if (backends.length > 0 && route.redirect === undefined) rule.backendRefs = backends;
    if (rt.timeouts !== null) rule.timeouts = rt.timeouts;
    if (rt.retry !== null) rule.retry = rt.retry;
    return rule;
  };
  if (!isObj(route.rewrite)) {
    if (typeof base.name === 'string') ruleNames.add(base.name);
    return [tail({ ...base, ...(matches.length > 0 ? { matches } : {}) }, filters)];
  }
  // A URI rewrite replaces what the match matched: one rule per match, each with its own modifier.
  const perMatch = matches.length > 0 ? matches : [{}];
  const rules: Obj[] = [];
  perMatch.forEach((m, j) => {
    const rewrite = convertRewrite(route.rewrite as Obj, `${at}.rewrite`, m.path);
    if (typeof rewrite === 'string') {
      find(
        'blocker',
        `${at}.rewrite`,
        `${rewrite}: ${perMatch.length > 1 ? `match ${j} of this route` : 'this route'} is not converted`,
      );
      return;
    }
    const rule: Record<string, unknown> = {};
    if (typeof base.name === 'string') {
      const n = perMatch.length === 1 ? base.name : `${base.name}-${j}`;
      if (!ruleNames.has(n)) {
        rule.name = n;
        ruleNames.add(n);
      }
    }
    rule.matches = [m];
    rules.push(tail(rule, [...filters, ...(rewrite === null ? [] : [rewrite])]));
  });
  return rules;
}

/** An Istio Destination → a backendRef, or why it has none. */
export function convertDestination(d: unknown, at: string, vs: IstioObject, ctx: RouteContext): BackendYaml | string {
  if (!isObj(d) || typeof d.host !== 'string') return `${at}.host: missing`;
  const ref = resolveServiceHost(d.host, vs.namespace);
  if (ref === null) return `${at}.host: ${JSON.stringify(d.host)} is not a Service of this cluster`;
  const svc = ctx.service(ref.namespace, ref.name);
  if (svc === undefined) return `${at}.host: Service ${ref.namespace}/${ref.name} is not in the input`;
  let port: number;
  const wanted = isObj(d.port) ? d.port.number : undefined;
  if (wanted !== undefined) {
    if (!svc.spec.ports.some((p) => p.port === wanted))
      return `${at}.port: Service ${ref.namespace}/${ref.name} has no port ${describeValue(wanted)}`;
    port = wanted as number;
  } else if (svc.spec.ports.length === 1) {
    port = (svc.spec.ports[0] as { port: number }).port;
  } else {
    return `${at}.port: Service ${ref.namespace}/${ref.name} has ${svc.spec.ports.length} ports; a backendRef needs destination.port.number`;
  }
  let name = ref.name;
  if (typeof d.subset === 'string') {
    const sub = ctx.subsets.resolve(svc, d.subset, vs.namespace);
    if (!sub.ok) return `${at}.subset: ${sub.reason}`;
    name = sub.service;
  }
  return ref.namespace === vs.namespace ? { name, port } : { name, namespace: ref.namespace, port };
}
