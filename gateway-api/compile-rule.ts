// One HTTPRoute rule as written → CompiledRule, or the problems that make Ferry drop it (reference
// gateway-api-anchor.md §1.1-§1.7: v1.6 limits and CEL rules, defaults, RE2-compatible regexes). The spec
// is hostile input: every shape is checked, nothing throws. Pure.
import {
  type CompileContext,
  DEFAULT_RETRY_ATTEMPTS,
  DNS_SUBDOMAIN,
  HEADER_NAME,
  invalidPathValue,
  isObj,
  MAX_BACKENDS,
  MAX_HEADER_MATCHES,
  MAX_MATCHES_PER_RULE,
  MAX_PATH_LENGTH,
  type Obj,
  type RouteProblem,
  RuleProblems,
  type RuleScope,
  resolveBackendRef,
  type ServicePortInfo,
} from './compile-common.ts';
import { checkFilterRules, readFilters } from './compile-filters.ts';
import { parseGatewayDuration } from './duration.ts';
import { compileRouteRegex } from './route-regex.ts';

export type { CompileContext, Obj, RouteProblem, RuleScope, ServicePortInfo };
export { invalidPathValue, isObj };

import type {
  CompiledRule,
  HeaderMatch,
  HttpMethod,
  PathMatch,
  QueryParamMatch,
  RetryPolicy,
  RouteBackend,
  RouteMatch,
  RouteTimeouts,
  ValueMatch,
} from './types.ts';
import { HTTP_METHODS } from './types.ts';

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

export function readRuleName(v: unknown, at: string, p: RuleProblems): string | null {
  if (typeof v !== 'string' || v.length > 253 || !DNS_SUBDOMAIN.test(v)) {
    return p.invalid(at, 'must be a DNS-1123 subdomain (lower case, at most 253 characters)');
  }
  return v;
}

// ---- matches ----

function readMatches(v: unknown, at: string, p: RuleProblems): RouteMatch[] | null {
  return readMatchList(v, at, p, readMatch, defaultMatch);
}

/**
 * A rule's `matches` list (HTTPRoute and GRPCRoute): absent or empty means the kind's match-everything
 * default; every element must read, or the rule is invalid.
 */
export function readMatchList(
  v: unknown,
  at: string,
  p: RuleProblems,
  readOne: (m: unknown, at: string, p: RuleProblems) => RouteMatch | null,
  matchAll: () => RouteMatch,
): RouteMatch[] | null {
  if (v === undefined || v === null) return [matchAll()];
  if (!Array.isArray(v)) return p.invalid(at, 'must be a list');
  if (v.length > MAX_MATCHES_PER_RULE) return p.invalid(at, `at most ${MAX_MATCHES_PER_RULE} matches per rule`);
  if (v.length === 0) return [matchAll()];
  const out: RouteMatch[] = [];
  v.forEach((m, i) => {
    const match = readOne(m, `${at}[${i}]`, p);
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

export function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: true): HeaderMatch[] | null;
export function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: false): QueryParamMatch[] | null;
export function readNamedMatches(v: unknown, at: string, p: RuleProblems, header: boolean): HeaderMatch[] | null {
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

export function compileRegex(value: string, at: string, p: RuleProblems): RegExp | null {
  const compiled = compileRouteRegex(value);
  if (compiled.ok) return compiled.regex;
  return p.invalid(at, `invalid regular expression ${JSON.stringify(value)}: ${compiled.reason}`);
}

// ---- filters ----

// ---- backends ----

export function readBackends(
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
