// HTTPRoute filters as written → HttpFilter values, with the CEL rules on combinations (reference
// gateway-api-anchor.md §1.4): header modifiers, redirects, rewrites, mirrors, CORS; unknown filter types
// make the rule invalid (an unknown filter must never be skipped). Pure.
import {
  HEADER_NAME,
  HOSTNAME,
  invalidPathValue,
  isObj,
  MAX_MODIFIER_ENTRIES,
  MAX_PATH_LENGTH,
  REDIRECT_CODES,
  type RouteProblem,
  type RuleProblems,
  type RuleScope,
  resolveBackendRef,
  SINGLE_FILTERS,
} from './compile-common.ts';
import type {
  CorsPolicy,
  HeaderModifier,
  HttpFilter,
  PathModifier,
  RequestRedirect,
  RouteBackend,
  RouteMatch,
} from './types.ts';

export function readFilters(
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

export function checkFilterRules(
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
