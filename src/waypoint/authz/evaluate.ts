// Per-request L7 authorization at the waypoint, in Istio's order (docs/architecture.md "Policy and enrollment"): a matching DENY denies;
// no ALLOW policy applies → allow; a matching ALLOW allows; otherwise deny. Policies apply when they
// target this waypoint's Gateway or the request's destination Service (in the policy's namespace). Pure.
import { matchesStringMatch, stringMatch } from '../../mesh/authz/match.ts';
import { ipInCidr, parseCidr } from '../../mesh/ip-addr.ts';
import type { Cidr, StringMatch } from '../../mesh/types.ts';
import type { Constraint, L7Condition, L7Operation, L7Policy, L7Rule, L7Source } from './compile.ts';

export interface L7RequestContext {
  /** `spiffe://td/ns/x/sa/y`, or null without a peer identity. */
  readonly sourcePrincipal: string | null;
  readonly sourceIp: string;
  readonly method: string;
  /** Without the query string. */
  readonly path: string;
  readonly host: string;
  /** The Service port the client addressed. */
  readonly port: number;
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

export interface L7Verdict {
  readonly allowed: boolean;
  /** The deciding policy (`ns/name`); null when no policy applied, or when no ALLOW matched. */
  readonly policy: string | null;
  readonly reason: string;
}

/** Below this many policies the filter is as fast as an index lookup. */
const INDEX_MIN_POLICIES = 16;
// Per frozen policy list (a WaypointState's, built once per config): `kind\0namespace\0name` → positions.
const targetIndexes = new WeakMap<readonly L7Policy[], Map<string, number[]>>();

const targetKey = (kind: 'Gateway' | 'Service', namespace: string, name: string): string =>
  `${kind}\u0000${namespace}\u0000${name}`;

function targetIndex(all: readonly L7Policy[]): Map<string, number[]> {
  let index = targetIndexes.get(all);
  if (index !== undefined) return index;
  index = new Map();
  for (const [i, p] of all.entries()) {
    for (const t of p.targets) {
      const key = targetKey(t.kind, p.namespace, t.name);
      const list = index.get(key);
      if (list === undefined) index.set(key, [i]);
      else if (list[list.length - 1] !== i) list.push(i); // a target listed twice counts once
    }
  }
  targetIndexes.set(all, index);
  return index;
}

/**
 * The policies that apply to a request (docs/performance.md, "Policy scale"): those targeting this waypoint's
 * Gateway or the destination Service, in list order. A frozen list of 16 or more is looked up in an index
 * built once per list instead of being filtered per request.
 */
export function policiesFor(
  all: readonly L7Policy[],
  waypoint: { readonly namespace: string; readonly name: string },
  service: { readonly namespace: string; readonly name: string } | null,
): L7Policy[] {
  if (all.length < INDEX_MIN_POLICIES || !Object.isFrozen(all)) return filterPolicies(all, waypoint, service);
  const index = targetIndex(all);
  const gateway = index.get(targetKey('Gateway', waypoint.namespace, waypoint.name)) ?? [];
  const forService = service === null ? [] : (index.get(targetKey('Service', service.namespace, service.name)) ?? []);
  if (forService.length === 0) return gateway.map((i) => all[i] as L7Policy);
  if (gateway.length === 0) return forService.map((i) => all[i] as L7Policy);
  const positions = [...new Set([...gateway, ...forService])].sort((a, b) => a - b);
  return positions.map((i) => all[i] as L7Policy);
}

/** The reference: every policy's targets compared (what policiesFor returns, by definition). */
export function filterPolicies(
  all: readonly L7Policy[],
  waypoint: { readonly namespace: string; readonly name: string },
  service: { readonly namespace: string; readonly name: string } | null,
): L7Policy[] {
  return all.filter((p) =>
    p.targets.some((t) =>
      t.kind === 'Gateway'
        ? p.namespace === waypoint.namespace && t.name === waypoint.name
        : service !== null && p.namespace === service.namespace && t.name === service.name,
    ),
  );
}

export function evaluateL7(policies: readonly L7Policy[], ctx: L7RequestContext): L7Verdict {
  for (const p of policies) {
    if (p.action === 'DENY' && policyMatches(p, ctx))
      return { allowed: false, policy: p.key, reason: 'denied by DENY policy' };
  }
  const allows = policies.filter((p) => p.action === 'ALLOW');
  if (allows.length === 0) return { allowed: true, policy: null, reason: 'no ALLOW policy applies' };
  for (const p of allows) {
    if (policyMatches(p, ctx)) return { allowed: true, policy: p.key, reason: 'allowed by ALLOW policy' };
  }
  return { allowed: false, policy: null, reason: 'no ALLOW policy matched' };
}

function policyMatches(p: L7Policy, ctx: L7RequestContext): boolean {
  return p.rules.some((r) => ruleMatches(r, ctx));
}

function ruleMatches(r: L7Rule, ctx: L7RequestContext): boolean {
  return (
    (r.from.length === 0 || r.from.some((s) => sourceMatches(s, ctx))) &&
    (r.to.length === 0 || r.to.some((o) => operationMatches(o, ctx))) &&
    r.when.every((c) => conditionMatches(c, ctx))
  );
}

function constraint<T>(c: Constraint<T>, test: (v: T) => boolean): boolean {
  return (c.values.length === 0 || c.values.some(test)) && !c.notValues.some(test);
}

const strMatch = (value: string | null) => (m: StringMatch) => value !== null && matchesStringMatch(m, value);

function namespaceOf(principal: string | null): string | null {
  const m = principal === null ? null : /\/ns\/([^/]+)\//.exec(principal);
  return m?.[1] ?? null;
}

/** `ns/sa` of a SPIFFE principal (`…/ns/<ns>/sa/<sa>`), or null. */
function serviceAccountOf(principal: string | null): string | null {
  const m = principal === null ? null : /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return m === null ? null : `${m[1]}/${m[2]}`;
}

function sourceMatches(s: L7Source, ctx: L7RequestContext): boolean {
  const principal = ctx.sourcePrincipal?.replace(/^spiffe:\/\//, '') ?? null;
  const serviceAccount = serviceAccountOf(principal);
  const inCidr = (c: Cidr) => ipInCidr(ctx.sourceIp, c);
  return (
    constraint(s.principals, strMatch(principal)) &&
    constraint(s.namespaces, strMatch(namespaceOf(ctx.sourcePrincipal))) &&
    constraint(s.serviceAccounts, (sa) => serviceAccount === sa) &&
    constraint(s.ipBlocks, inCidr) &&
    constraint(s.remoteIpBlocks, inCidr)
  );
}

function hostWithoutPort(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

function operationMatches(o: L7Operation, ctx: L7RequestContext): boolean {
  const host = ctx.host.toLowerCase();
  return (
    constraint(o.methods, strMatch(ctx.method)) &&
    constraint(o.paths, strMatch(ctx.path)) &&
    constraint(o.hosts, (m) => matchesStringMatch(m, host) || matchesStringMatch(m, hostWithoutPort(host))) &&
    constraint(o.ports, (p) => p === ctx.port)
  );
}

function conditionValue(c: L7Condition, ctx: L7RequestContext): string | null {
  switch (c.key.kind) {
    case 'header':
      return ctx.headers.get(c.key.name)?.join(',') ?? null;
    case 'source.ip':
      return ctx.sourceIp;
    case 'source.namespace':
      return namespaceOf(ctx.sourcePrincipal);
    case 'source.principal':
      return ctx.sourcePrincipal?.replace(/^spiffe:\/\//, '') ?? null;
    case 'destination.port':
      return String(ctx.port);
  }
}

function conditionMatches(c: L7Condition, ctx: L7RequestContext): boolean {
  const value = conditionValue(c, ctx);
  const test = (pattern: string) => {
    if (value === null) return false;
    if (c.key.kind === 'source.ip') return value === pattern || isInCidrText(value, pattern);
    return matchesStringMatch(stringMatch(pattern), value);
  };
  return (c.values.length === 0 || c.values.some(test)) && !c.notValues.some(test);
}

function isInCidrText(ip: string, text: string): boolean {
  const cidr = parseCidr(text);
  return cidr !== null && ipInCidr(ip, cidr);
}
