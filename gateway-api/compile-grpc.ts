// GRPCRoute (gateway.networking.k8s.io/v1, MESH-GRPC) as written → the same CompiledRule shape HTTPRoute
// rules compile to, so one matcher, one filter implementation and one backend splitter serve both. A gRPC
// call is `POST /<service>/<method>` over HTTP/2, so a method match becomes a path match (Exact service and
// method → Exact path; service only → PathPrefix `/<service>`; method only, or RegularExpression → an
// anchored regex over both segments); the match as written is kept for GRPCRoute precedence (service
// characters, then method characters, then header matches: route-table.ts). Filters: Request/Response
// HeaderModifier and RequestMirror (ExtensionRef and the HTTPRoute-only ones drop the rule). No timeouts or
// retries exist in GRPCRoute. Pure; never throws.
import { isObj, type RouteProblem, RuleProblems, type RuleScope } from './compile-common.ts';
import { readFilters } from './compile-filters.ts';
import {
  compileRegex,
  type RuleOutcome,
  readBackends,
  readMatchList,
  readNamedMatches,
  readRuleName,
} from './compile-rule.ts';
import type { CompiledRule, GrpcMethodMatch, HttpFilter, PathMatch, RouteMatch } from './types.ts';

const GRPC_FILTERS = new Set(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror']);
// The CRD's validation for Exact values (service is a dotted proto name, method an identifier).
const SERVICE_NAME = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const METHOD_NAME = /^[A-Za-z_][A-Za-z_0-9]*$/;
const MAX_NAME = 1024;
// What one path segment of a gRPC request can be, for a side the match leaves open.
const ANY_SEGMENT = '[^/]+';

export function compileGrpcRule(raw: unknown, index: number, scope: RuleScope): RuleOutcome {
  const at = `spec.rules[${index}]`;
  const p = new RuleProblems();
  const unresolved: RouteProblem[] = [];
  if (!isObj(raw)) {
    p.invalid(at, 'must be an object');
    return { rule: null, invalid: p.list, unresolved };
  }
  const name = raw.name === undefined ? null : readRuleName(raw.name, `${at}.name`, p);
  const matches = readGrpcMatches(raw.matches, `${at}.matches`, p);
  const filters = readFilters(raw.filters, `${at}.filters`, p, scope, unresolved);
  const backends = readBackends(raw.backendRefs, `${at}.backendRefs`, p, scope, unresolved);
  for (const key of Object.keys(raw)) {
    if (!['name', 'matches', 'filters', 'backendRefs'].includes(key)) {
      p.invalid(
        `${at}.${key}`,
        key === 'sessionPersistence' ? 'sessionPersistence is not supported' : 'unknown field in a GRPCRoute rule',
      );
    }
  }
  if (filters !== null) checkGrpcFilters(filters, `${at}.filters`, p);
  backends?.forEach((b, i) => {
    checkGrpcFilters(b.filters, `${at}.backendRefs[${i}].filters`, p);
  });
  if (p.list.length > 0 || matches === null || filters === null || backends === null) {
    return { rule: null, invalid: p.list, unresolved };
  }
  const rule: CompiledRule = {
    route: scope.routeKey,
    ruleIndex: index,
    name,
    matches,
    filters,
    backends,
    timeouts: { requestMs: null, backendRequestMs: null },
    retry: null,
  };
  return { rule, invalid: [], unresolved };
}

function checkGrpcFilters(filters: readonly HttpFilter[], at: string, p: RuleProblems): void {
  filters.forEach((f, i) => {
    if (!GRPC_FILTERS.has(f.type)) {
      p.invalid(`${at}[${i}].type`, `filter type ${f.type} is not valid in a GRPCRoute`, 'IncompatibleFilters');
    }
  });
}

function readGrpcMatches(v: unknown, at: string, p: RuleProblems): RouteMatch[] | null {
  return readMatchList(v, at, p, readGrpcMatch, anyCall);
}

/** No method match: every request (the spec's "match every gRPC request"). */
function anyCall(): RouteMatch {
  return { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], method: null, grpc: null };
}

function readGrpcMatch(v: unknown, at: string, p: RuleProblems): RouteMatch | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  for (const key of Object.keys(v)) {
    if (key !== 'method' && key !== 'headers') return p.invalid(`${at}.${key}`, 'unknown field in a GRPCRoute match');
  }
  const headers = readNamedMatches(v.headers, `${at}.headers`, p, true);
  const method = v.method === undefined || v.method === null ? null : readMethodMatch(v.method, `${at}.method`, p);
  if (headers === null || (v.method !== undefined && v.method !== null && method === null)) return null;
  if (method === null) return { ...anyCall(), headers };
  const path = methodPath(method.match, `${at}.method`, p);
  return path === null ? null : { path, headers, queryParams: [], method: null, grpc: method.match };
}

function readMethodMatch(v: unknown, at: string, p: RuleProblems): { match: GrpcMethodMatch } | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const type = v.type ?? 'Exact';
  if (type !== 'Exact' && type !== 'RegularExpression') {
    return p.invalid(`${at}.type`, 'must be Exact or RegularExpression');
  }
  const side = (key: 'service' | 'method'): string | null | undefined => {
    const value = v[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_NAME) {
      p.invalid(`${at}.${key}`, `must be a string of 1 to ${MAX_NAME} characters`);
      return undefined;
    }
    if (type === 'Exact' && !(key === 'service' ? SERVICE_NAME : METHOD_NAME).test(value)) {
      p.invalid(
        `${at}.${key}`,
        key === 'service'
          ? `${JSON.stringify(value)} is not a gRPC service name (dotted identifiers, e.g. "pkg.Service")`
          : `${JSON.stringify(value)} is not a gRPC method name (an identifier)`,
      );
      return undefined;
    }
    return value;
  };
  const service = side('service');
  const method = side('method');
  if (service === undefined || method === undefined) return null;
  if (service === null && method === null) return p.invalid(at, 'one or both of service and method must be set');
  return { match: { type, service, method } };
}

/** The request path a method match selects. */
function methodPath(m: GrpcMethodMatch, at: string, p: RuleProblems): PathMatch | null {
  if (m.type === 'Exact') {
    if (m.service !== null && m.method !== null) return { type: 'Exact', value: `/${m.service}/${m.method}` };
    // Segment-aware prefix: `/pkg.Svc` matches `/pkg.Svc/<any method>` and not `/pkg.SvcOther/...`.
    if (m.service !== null) return { type: 'PathPrefix', value: `/${m.service}` };
    const value = `/${ANY_SEGMENT}/${m.method}`;
    const regex = compileRegex(value, `${at}.method`, p);
    return regex === null ? null : { type: 'RegularExpression', value, regex };
  }
  // Each side on its own first, so that a bad regex is named by its field.
  if (m.service !== null && compileRegex(m.service, `${at}.service`, p) === null) return null;
  if (m.method !== null && compileRegex(m.method, `${at}.method`, p) === null) return null;
  const value = `/(?:${m.service ?? ANY_SEGMENT})/(?:${m.method ?? ANY_SEGMENT})`;
  const regex = compileRegex(value, at, p);
  return regex === null ? null : { type: 'RegularExpression', value, regex };
}
