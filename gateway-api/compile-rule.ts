// One HTTPRoute rule as written → CompiledRule, or the problems that make Ferry drop it (reference
// gateway-api-anchor.md §1.1-§1.7: v1.6 limits and CEL rules, defaults, RE2-compatible regexes). The spec
// is hostile input: every shape is checked, nothing throws. Pure.
import { parseGatewayDuration } from './duration.ts';
import type {
  CompiledRule,
  CorsPolicy,
  HeaderMatch,
  HeaderModifier,
  HttpFilter,
  HttpMethod,
  PathMatch,
  PathModifier,
  QueryParamMatch,
  RedirectStatus,
  RequestRedirect,
  RetryPolicy,
  RouteBackend,
  RouteMatch,
  RouteTimeouts,
  ServiceBackend,
  ValueMatch,
} from './types.ts';
import { HTTP_METHODS } from './types.ts';

export interface ServicePortInfo {
  readonly port: number;
  readonly name: string | null;
  readonly appProtocol: string | null;
}

export interface CompileContext {
  /** A Service by namespace/name, or undefined when it does not exist. */
  readonly service: (namespace: string, name: string) => { readonly ports: readonly ServicePortInfo[] } | undefined;
  /** True when ns/name is a Gateway of class ferry-waypoint. */
  readonly isWaypointGateway: (namespace: string, name: string) => boolean;
  /** True when a ReferenceGrant in toNamespace lets HTTPRoutes of fromNamespace reference Service toName. */
  readonly referenceGrantAllows: (fromNamespace: string, toNamespace: string, toName: string) => boolean;
}

export interface RouteProblem {
  readonly code: 'FERRY_ROUTE_INVALID' | 'FERRY_ROUTE_UNRESOLVED_REF' | 'FERRY_ROUTE_NO_PARENT';
  readonly field: string;
  /** Gateway API condition reason. */
  readonly reason: string;
  readonly message: string;
}

/** Where a rule is compiled: the route's namespace and whether ReferenceGrants apply to its backends. */
export interface RuleScope {
  readonly namespace: string;
  readonly routeKey: string;
  /** GEP-1294: routes whose parents are all Services need no ReferenceGrant for other namespaces. */
  readonly needsReferenceGrant: boolean;
  readonly ctx: CompileContext;
}

export type Obj = Readonly<Record<string, unknown>>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

const MAX_MATCHES_PER_RULE = 64;
const MAX_BACKENDS = 16;
const MAX_HEADER_MATCHES = 16;
const MAX_MODIFIER_ENTRIES = 16;
const MAX_PATH_LENGTH = 1024;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;
const REDIRECT_CODES: readonly RedirectStatus[] = [301, 302, 303, 307, 308];
// Filters that may appear at most once per list (CEL in the CRD).
const SINGLE_FILTERS = new Set([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'CORS',
]);
const DEFAULT_RETRY_ATTEMPTS = 2; // Istio's default when the stanza gives none

/** Collects the problems of one rule; the rule is dropped when any is recorded. */
class RuleProblems {
  readonly list: RouteProblem[] = [];
  invalid(field: string, message: string, reason = 'UnsupportedValue'): null {
    this.list.push({ code: 'FERRY_ROUTE_INVALID', field, reason, message });
    return null;
  }
}

export interface RuleOutcome {
  readonly rule: CompiledRule | null;
  /** Problems that drop the rule. */
  readonly invalid: readonly RouteProblem[];
  /** Unresolved refs: the rule stays, the affected share answers 500. */
  readonly unresolved: readonly RouteProblem[];
}

export function compileRule(raw: unknown, index: number, scope: RuleScope): RuleOutcome {
  const at = `spec.rules[${index}]`;
  const p = new RuleProblems();
  const unresolved: RouteProblem[] = [];
  if (!isObj(raw)) {
    p.invalid(at, 'must be an object');
    return { rule: null, invalid: p.list, unresolved };
  }
  const name = raw.name === undefined ? null : readRuleName(raw.name, `${at}.name`, p);
  const matches = readMatches(raw.matches, `${at}.matches`, p);
  const filters = readFilters(raw.filters, `${at}.filters`, p, scope, unresolved);
  const backends = readBackends(raw.backendRefs, `${at}.backendRefs`, p, scope, unresolved);
  const timeouts = readTimeouts(raw.timeouts, `${at}.timeouts`, p);
  const retry = raw.retry === undefined || raw.retry === null ? null : readRetry(raw.retry, `${at}.retry`, p);
  for (const key of Object.keys(raw)) {
    if (!['name', 'matches', 'filters', 'backendRefs', 'timeouts', 'retry'].includes(key)) {
      p.invalid(`${at}.${key}`, key === 'sessionPersistence' ? 'sessionPersistence is not supported' : 'unknown field');
    }
  }
  if (matches !== null && filters !== null) checkFilterRules(filters, matches, backends, at, p);
  if (p.list.length > 0 || matches === null || filters === null || backends === null || timeouts === null) {
    return { rule: null, invalid: p.list, unresolved };
  }
  return {
    rule: { route: scope.routeKey, ruleIndex: index, name, matches, filters, backends, timeouts, retry },
    invalid: [],
    unresolved,
  };
}

function readRuleName(v: unknown, at: string, p: RuleProblems): string | null {
  if (typeof v !== 'string' || v.length > 253 || !DNS_SUBDOMAIN.test(v)) {
    return p.invalid(at, 'must be a DNS-1123 subdomain (lower case, at most 253 characters)');
  }
  return v;
}

// ---- matches ----

function readMatches(v: unknown, at: string, p: RuleProblems): RouteMatch[] | null {
  if (v === undefined || v === null) return [defaultMatch()];
  if (!Array.isArray(v)) return p.invalid(at, 'must be a list');
  if (v.length > MAX_MATCHES_PER_RULE) return p.invalid(at, `at most ${MAX_MATCHES_PER_RULE} matches per rule`);
  if (v.length === 0) return [defaultMatch()];
  const out: RouteMatch[] = [];
  v.forEach((m, i) => {
    const match = readMatch(m, `${at}[${i}]`, p);
    if (match !== null) out.push(match);
  });
  return out.length === v.length ? out : null;
}

function defaultMatch(): RouteMatch {
  return { path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], method: null };
}

function readMatch(v: unknown, at: string, p: RuleProblems): RouteMatch | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const path = v.path === undefined ? ({ type: 'PathPrefix', value: '/' } as const) : readPath(v.path, `${at}.path`, p);
  const headers = readNamedMatches(v.headers, `${at}.headers`, p, true);
  const queryParams = readNamedMatches(v.queryParams, `${at}.queryParams`, p, false);
  let method: HttpMethod | null = null;
  if (v.method !== undefined) {
    method = HTTP_METHODS.find((m) => m === v.method) ?? null;
    if (method === null) return p.invalid(`${at}.method`, `must be one of ${HTTP_METHODS.join(', ')}`);
  }
  if (path === null || headers === null || queryParams === null) return null;
  return { path, headers, queryParams, method };
}

function readPath(v: unknown, at: string, p: RuleProblems): PathMatch | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const type = v.type ?? 'PathPrefix';
  const value = v.value ?? '/';
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PATH_LENGTH) {
    return p.invalid(`${at}.value`, `must be a string of 1 to ${MAX_PATH_LENGTH} characters`);
  }
  if (type === 'RegularExpression') {
    const regex = compileRegex(value, `${at}.value`, p);
    return regex === null ? null : { type, value, regex };
  }
  if (type !== 'Exact' && type !== 'PathPrefix') {
    return p.invalid(`${at}.type`, 'must be Exact, PathPrefix or RegularExpression');
  }
  const bad = invalidPathValue(value);
  if (bad !== null) return p.invalid(`${at}.value`, bad);
  if (type === 'Exact') return { type, value };
  // Segment-aware prefix: a trailing `/` does not change what matches.
  return { type, value: value.length > 1 && value.endsWith('/') ? value.replace(/\/+$/, '') || '/' : value };
}

/** The CEL checks on Exact/PathPrefix values; null when fine. */
export function invalidPathValue(value: string): string | null {
  if (!value.startsWith('/')) return 'must start with "/"';
  if (!PATH_CHARS.test(value)) return 'contains characters not allowed in a path';
  if (/\/\/|\/\.\/|\/\.\.\/|%2f|%2F|#/.test(value)) return 'must not contain "//", "/./", "/../", "%2f" or "#"';
  if (/\/\.\.?$/.test(value)) return 'must not end with "/." or "/.."';
  return null;
}

function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: true): HeaderMatch[] | null;
function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: false): QueryParamMatch[] | null;
function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: boolean): HeaderMatch[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return p.invalid(at, 'must be a list');
  if (v.length > MAX_HEADER_MATCHES) return p.invalid(at, `at most ${MAX_HEADER_MATCHES} entries`);
  const out: HeaderMatch[] = [];
  const seen = new Set<string>();
  let ok = true;
  v.forEach((m, i) => {
    const here = `${at}[${i}]`;
    if (!isObj(m) || typeof m.name !== 'string' || m.name.length === 0 || m.name.length > 256) {
      ok = p.invalid(`${here}.name`, 'must be a non-empty string') !== null;
      return;
    }
    if (header && !HEADER_NAME.test(m.name)) {
      ok = p.invalid(`${here}.name`, `${JSON.stringify(m.name)} is not a valid header name`) !== null;
      return;
    }
    const name = header ? m.name.toLowerCase() : m.name;
    const match = readValueMatch(m, here, p);
    if (match === null) {
      ok = false;
      return;
    }
    if (seen.has(name)) return; // only the first entry per name counts (spec)
    seen.add(name);
    out.push({ name, match });
  });
  return ok ? out : null;
}

function readValueMatch(m: Obj, at: string, p: RuleProblems): ValueMatch | null {
  const type = m.type ?? 'Exact';
  if (typeof m.value !== 'string' || m.value.length > 4096) {
    return p.invalid(`${at}.value`, 'must be a string of at most 4096 characters');
  }
  if (type === 'Exact') return { type, value: m.value };
  if (type === 'RegularExpression') {
    const regex = compileRegex(m.value, `${at}.value`, p);
    return regex === null ? null : { type, value: m.value, regex };
  }
  return p.invalid(`${at}.type`, 'must be Exact or RegularExpression');
}

// RE2 (what Envoy runs) has no backreferences or lookaround; refusing them keeps routes portable.
const NON_RE2 = /\\[1-9]|\\k<|\(\?[=!]|\(\?<[=!]/;

function compileRegex(value: string, at: string, p: RuleProblems): RegExp | null {
  if (NON_RE2.test(value)) {
    return p.invalid(at, `regular expression ${JSON.stringify(value)} uses backreferences or lookaround (not RE2)`);
  }
  try {
    return new RegExp(`^(?:${value})$`, 'u');
  } catch (err) {
    return p.invalid(at, `invalid regular expression ${JSON.stringify(value)}: ${(err as Error).message}`);
  }
}

// ---- filters ----

function readFilters(
  v: unknown,
  at: string,
  p: RuleProblems,
  scope: RuleScope,
  unresolved: RouteProblem[],
): HttpFilter[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return p.invalid(at, 'must be a list');
  if (v.length > 16) return p.invalid(at, 'at most 16 filters');
  const out: HttpFilter[] = [];
  const seen = new Set<string>();
  let ok = true;
  v.forEach((f, i) => {
    const filter = readFilter(f, `${at}[${i}]`, p, scope, unresolved);
    if (filter === null) {
      ok = false;
      return;
    }
    if (SINGLE_FILTERS.has(filter.type) && seen.has(filter.type)) {
      ok = p.invalid(`${at}[${i}].type`, `${filter.type} may appear only once`, 'IncompatibleFilters') !== null;
    }
    seen.add(filter.type);
    out.push(filter);
  });
  return ok ? out : null;
}

function readFilter(
  f: unknown,
  at: string,
  p: RuleProblems,
  scope: RuleScope,
  unresolved: RouteProblem[],
): HttpFilter | null {
  if (!isObj(f)) return p.invalid(at, 'must be an object');
  switch (f.type) {
    case 'RequestHeaderModifier':
    case 'ResponseHeaderModifier': {
      const key = f.type === 'RequestHeaderModifier' ? 'requestHeaderModifier' : 'responseHeaderModifier';
      const modifier = readHeaderModifier(f[key], `${at}.${key}`, p);
      return modifier === null ? null : { type: f.type, modifier };
    }
    case 'RequestRedirect': {
      const redirect = readRedirect(f.requestRedirect, `${at}.requestRedirect`, p);
      return redirect === null ? null : { type: 'RequestRedirect', redirect };
    }
    case 'URLRewrite': {
      const r = f.urlRewrite;
      if (!isObj(r)) return p.invalid(`${at}.urlRewrite`, 'must be an object');
      const hostname = r.hostname === undefined ? null : readHostname(r.hostname, `${at}.urlRewrite.hostname`, p);
      const path = r.path === undefined ? null : readPathModifier(r.path, `${at}.urlRewrite.path`, p);
      if ((r.hostname !== undefined && hostname === null) || (r.path !== undefined && path === null)) return null;
      return { type: 'URLRewrite', rewrite: { hostname, path } };
    }
    case 'RequestMirror':
      return readMirror(f.requestMirror, `${at}.requestMirror`, p, scope, unresolved);
    case 'CORS': {
      const cors = readCors(f.cors, `${at}.cors`, p);
      return cors === null ? null : { type: 'CORS', cors };
    }
    default:
      // Istio answers InvalidFilter for ExtensionRef/ExternalAuth; an unknown filter must never be skipped.
      return p.invalid(`${at}.type`, `filter type ${JSON.stringify(f.type)} is not supported by Ferry waypoints`);
  }
}

function readHeaderModifier(v: unknown, at: string, p: RuleProblems): HeaderModifier | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const pairs = (key: 'set' | 'add') => {
    const list = v[key] ?? [];
    if (!Array.isArray(list) || list.length > MAX_MODIFIER_ENTRIES) {
      return p.invalid(`${at}.${key}`, `must be a list of at most ${MAX_MODIFIER_ENTRIES} {name, value}`);
    }
    const out: { name: string; value: string }[] = [];
    for (const [i, e] of list.entries()) {
      if (!isObj(e) || typeof e.name !== 'string' || !HEADER_NAME.test(e.name) || typeof e.value !== 'string') {
        return p.invalid(`${at}.${key}[${i}]`, 'must be {name: <header name>, value: <string>}');
      }
      if (/[\r\n\0]/.test(e.value)) return p.invalid(`${at}.${key}[${i}].value`, 'must not contain CR, LF or NUL');
      out.push({ name: e.name.toLowerCase(), value: e.value });
    }
    return out;
  };
  const set = pairs('set');
  const add = pairs('add');
  const removeRaw = v.remove ?? [];
  if (!Array.isArray(removeRaw) || removeRaw.length > MAX_MODIFIER_ENTRIES) {
    return p.invalid(`${at}.remove`, `must be a list of at most ${MAX_MODIFIER_ENTRIES} header names`);
  }
  const remove: string[] = [];
  for (const [i, n] of removeRaw.entries()) {
    if (typeof n !== 'string' || !HEADER_NAME.test(n)) return p.invalid(`${at}.remove[${i}]`, 'must be a header name');
    remove.push(n.toLowerCase());
  }
  return set === null || add === null ? null : { set, add, remove };
}

function readHostname(v: unknown, at: string, p: RuleProblems): string | null {
  if (typeof v !== 'string' || v.length > 253 || !HOSTNAME.test(v)) return p.invalid(at, 'must be a hostname');
  return v;
}

function readPathModifier(v: unknown, at: string, p: RuleProblems): PathModifier | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  if (v.type === 'ReplaceFullPath' || v.type === 'ReplacePrefixMatch') {
    const key = v.type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    const value = v[key];
    if (typeof value !== 'string' || value.length > MAX_PATH_LENGTH) return p.invalid(`${at}.${key}`, 'must be a path');
    if (value !== '' && invalidPathValue(value) !== null)
      return p.invalid(`${at}.${key}`, invalidPathValue(value) ?? '');
    return { type: v.type, value };
  }
  return p.invalid(`${at}.type`, 'must be ReplaceFullPath or ReplacePrefixMatch');
}

function readRedirect(v: unknown, at: string, p: RuleProblems): RequestRedirect | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  let scheme: 'http' | 'https' | null = null;
  if (v.scheme !== undefined) {
    if (v.scheme !== 'http' && v.scheme !== 'https') return p.invalid(`${at}.scheme`, 'must be http or https');
    scheme = v.scheme;
  }
  const hostname = v.hostname === undefined ? null : readHostname(v.hostname, `${at}.hostname`, p);
  const path = v.path === undefined ? null : readPathModifier(v.path, `${at}.path`, p);
  let port: number | null = null;
  if (v.port !== undefined) {
    if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) {
      return p.invalid(`${at}.port`, 'must be a port number 1..65535');
    }
    port = v.port as number;
  }
  const statusCode = REDIRECT_CODES.find((c) => c === (v.statusCode ?? 302));
  if (statusCode === undefined) return p.invalid(`${at}.statusCode`, 'must be one of 301, 302, 303, 307, 308');
  if ((v.hostname !== undefined && hostname === null) || (v.path !== undefined && path === null)) return null;
  return { scheme, hostname, path, port, statusCode };
}

function readMirror(
  v: unknown,
  at: string,
  p: RuleProblems,
  scope: RuleScope,
  unresolved: RouteProblem[],
): HttpFilter | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  if (v.percent !== undefined && v.fraction !== undefined) return p.invalid(at, 'set percent or fraction, not both');
  let numerator = 1;
  let denominator = 1;
  if (v.percent !== undefined) {
    if (!Number.isInteger(v.percent) || (v.percent as number) < 0 || (v.percent as number) > 100) {
      return p.invalid(`${at}.percent`, 'must be an integer 0..100');
    }
    numerator = v.percent as number;
    denominator = 100;
  } else if (v.fraction !== undefined) {
    const f = v.fraction;
    const num = isObj(f) ? f.numerator : undefined;
    const den = isObj(f) ? (f.denominator ?? 100) : undefined;
    if (
      !Number.isInteger(num) ||
      !Number.isInteger(den) ||
      (den as number) < 1 ||
      (num as number) < 0 ||
      (num as number) > (den as number)
    ) {
      return p.invalid(
        `${at}.fraction`,
        'must be {numerator ≥ 0, denominator ≥ 1 (default 100)} with numerator ≤ denominator',
      );
    }
    numerator = num as number;
    denominator = den as number;
  }
  const ref = resolveBackendRef(v.backendRef, `${at}.backendRef`, p, scope, unresolved);
  if (ref === undefined) return null;
  return { type: 'RequestMirror', mirror: { backend: ref, numerator, denominator } };
}

function readCors(v: unknown, at: string, p: RuleProblems): CorsPolicy | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const list = (key: string, max: number, normalize: (s: string) => string): string[] | null => {
    const raw = v[key] ?? [];
    if (!Array.isArray(raw) || raw.length > max || raw.some((s) => typeof s !== 'string' || s.length === 0)) {
      return p.invalid(`${at}.${key}`, `must be a list of at most ${max} non-empty strings`);
    }
    return raw.map((s) => normalize(s as string));
  };
  const allowOrigins = list('allowOrigins', 64, (s) => s.toLowerCase());
  const allowMethods = list('allowMethods', 9, (s) => s.toUpperCase());
  const allowHeaders = list('allowHeaders', 64, (s) => s.toLowerCase());
  const exposeHeaders = list('exposeHeaders', 64, (s) => s.toLowerCase());
  let maxAgeSeconds = 5;
  if (v.maxAge !== undefined) {
    if (!Number.isInteger(v.maxAge) || (v.maxAge as number) < 1)
      return p.invalid(`${at}.maxAge`, 'must be an integer ≥ 1');
    maxAgeSeconds = v.maxAge as number;
  }
  if (v.allowCredentials !== undefined && typeof v.allowCredentials !== 'boolean') {
    return p.invalid(`${at}.allowCredentials`, 'must be true or false');
  }
  if (allowOrigins === null || allowMethods === null || allowHeaders === null || exposeHeaders === null) return null;
  return {
    allowOrigins,
    allowCredentials: v.allowCredentials === true,
    allowMethods,
    allowHeaders,
    exposeHeaders,
    maxAgeSeconds,
  };
}

function checkFilterRules(
  filters: readonly HttpFilter[],
  matches: readonly RouteMatch[],
  backends: readonly RouteBackend[] | null,
  at: string,
  p: RuleProblems,
): void {
  const types = new Set(filters.map((f) => f.type));
  if (types.has('RequestRedirect') && types.has('URLRewrite')) {
    p.invalid(`${at}.filters`, 'RequestRedirect and URLRewrite cannot be combined', 'IncompatibleFilters');
  }
  if (types.has('RequestRedirect') && backends !== null && backends.length > 0) {
    p.invalid(`${at}.backendRefs`, 'a rule with RequestRedirect must not have backendRefs', 'IncompatibleFilters');
  }
  const usesPrefixReplace = [...filters, ...(backends ?? []).flatMap((b) => b.filters)].some(
    (f) =>
      (f.type === 'RequestRedirect' && f.redirect.path?.type === 'ReplacePrefixMatch') ||
      (f.type === 'URLRewrite' && f.rewrite.path?.type === 'ReplacePrefixMatch'),
  );
  if (usesPrefixReplace && (matches.length !== 1 || matches[0]?.path.type !== 'PathPrefix')) {
    p.invalid(`${at}.matches`, 'ReplacePrefixMatch needs exactly one match, of type PathPrefix', 'IncompatibleFilters');
  }
}

// ---- backends ----

function readBackends(
  v: unknown,
  at: string,
  p: RuleProblems,
  scope: RuleScope,
  unresolved: RouteProblem[],
): RouteBackend[] | null {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) return p.invalid(at, 'must be a list');
  if (v.length > MAX_BACKENDS) return p.invalid(at, `at most ${MAX_BACKENDS} backendRefs`);
  const out: RouteBackend[] = [];
  let ok = true;
  v.forEach((b, i) => {
    const here = `${at}[${i}]`;
    if (!isObj(b)) {
      ok = p.invalid(here, 'must be an object') !== null;
      return;
    }
    const weight = b.weight ?? 1;
    if (!Number.isInteger(weight) || (weight as number) < 0 || (weight as number) > 1_000_000) {
      ok = p.invalid(`${here}.weight`, 'must be an integer 0..1000000') !== null;
      return;
    }
    const service = resolveBackendRef(b, here, p, scope, unresolved);
    const filters = readFilters(b.filters, `${here}.filters`, p, scope, unresolved);
    if (service === undefined || filters === null) {
      ok = false;
      return;
    }
    if (filters.some((f) => f.type === 'RequestRedirect')) {
      ok =
        p.invalid(`${here}.filters`, 'RequestRedirect is not allowed on a backendRef', 'IncompatibleFilters') !== null;
      return;
    }
    const problem = service === null ? (unresolved[unresolved.length - 1]?.reason ?? 'BackendNotFound') : null;
    out.push({ service, problem: problem as RouteBackend['problem'], weight: weight as number, filters });
  });
  return ok ? out : null;
}

/**
 * A Service backendRef: the Service, null when it does not resolve (recorded in `unresolved`, the share
 * answers 500), undefined when the ref itself is malformed (recorded in `p`, the rule is dropped).
 */
function resolveBackendRef(
  b: unknown,
  at: string,
  p: RuleProblems,
  scope: RuleScope,
  unresolved: RouteProblem[],
): ServiceBackend | null | undefined {
  if (!isObj(b) || typeof b.name !== 'string' || b.name.length === 0) {
    p.invalid(`${at}.name`, 'must be a non-empty string');
    return undefined;
  }
  const group = b.group ?? '';
  const kind = b.kind ?? 'Service';
  const namespace = typeof b.namespace === 'string' && b.namespace !== '' ? b.namespace : scope.namespace;
  const name = b.name;
  const fail = (reason: string, message: string): null => {
    unresolved.push({ code: 'FERRY_ROUTE_UNRESOLVED_REF', field: at, reason, message });
    return null;
  };
  if ((group !== '' && group !== 'core') || kind !== 'Service') {
    return fail('InvalidKind', `backendRef ${String(group)}/${String(kind)} ${name}: only Services are supported`);
  }
  if (!Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535) {
    p.invalid(`${at}.port`, 'is required for a Service backendRef (1..65535)');
    return undefined;
  }
  const port = b.port as number;
  if (namespace !== scope.namespace && scope.needsReferenceGrant) {
    if (!scope.ctx.referenceGrantAllows(scope.namespace, namespace, name)) {
      return fail('RefNotPermitted', `backendRef ${namespace}/${name}: no ReferenceGrant in ${namespace} allows it`);
    }
  }
  const svc = scope.ctx.service(namespace, name);
  if (svc === undefined) return fail('BackendNotFound', `backendRef Service ${namespace}/${name} not found`);
  const sp = svc.ports.find((x) => x.port === port);
  if (sp === undefined) return fail('BackendNotFound', `backendRef Service ${namespace}/${name} has no port ${port}`);
  if (sp.appProtocol === 'tcp' || sp.appProtocol === 'udp') {
    return fail('UnsupportedProtocol', `backendRef ${namespace}/${name}:${port} has appProtocol ${sp.appProtocol}`);
  }
  return { namespace, name, port };
}

// ---- timeouts and retry ----

function readTimeouts(v: unknown, at: string, p: RuleProblems): RouteTimeouts | null {
  if (v === undefined || v === null) return { requestMs: null, backendRequestMs: null };
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const one = (key: 'request' | 'backendRequest'): number | null | undefined => {
    if (v[key] === undefined) return null;
    const d = parseGatewayDuration(v[key]);
    if (!d.ok) {
      p.invalid(`${at}.${key}`, d.error);
      return undefined;
    }
    return d.ms === 0 ? null : d.ms; // 0s disables
  };
  const requestMs = one('request');
  const backendRequestMs = one('backendRequest');
  if (requestMs === undefined || backendRequestMs === undefined) return null;
  if (requestMs !== null && backendRequestMs !== null && backendRequestMs > requestMs) {
    return p.invalid(`${at}.backendRequest`, 'must not be longer than request (unless request is 0s)');
  }
  return { requestMs, backendRequestMs };
}

function readRetry(v: unknown, at: string, p: RuleProblems): RetryPolicy | null {
  if (!isObj(v)) return p.invalid(at, 'must be an object');
  const attempts = v.attempts ?? DEFAULT_RETRY_ATTEMPTS;
  if (!Number.isInteger(attempts) || (attempts as number) < 1 || (attempts as number) > 100) {
    return p.invalid(`${at}.attempts`, 'must be an integer 1..100');
  }
  const codesRaw = v.codes ?? [];
  if (!Array.isArray(codesRaw)) return p.invalid(`${at}.codes`, 'must be a list of status codes');
  const codes: number[] = [];
  for (const [i, c] of codesRaw.entries()) {
    if (!Number.isInteger(c) || c < 400 || c > 599) return p.invalid(`${at}.codes[${i}]`, 'must be a status 400..599');
    if (codes.includes(c)) return p.invalid(`${at}.codes[${i}]`, `duplicate code ${c}`);
    codes.push(c);
  }
  let backoffMs = 0;
  if (v.backoff !== undefined) {
    const d = parseGatewayDuration(v.backoff);
    if (!d.ok) return p.invalid(`${at}.backoff`, d.error);
    backoffMs = d.ms;
  }
  return { attempts: attempts as number, codes, backoffMs };
}
