// What every part of HTTPRoute rule compilation shares: the context (Services, waypoint Gateways,
// ReferenceGrants), the problem collector, the v1.6 limits and syntax, path validation and the resolution
// of a Service backendRef. Pure.
import type { RedirectStatus, RouteKind, ServiceBackend } from './types.ts';

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
  /** True when a ReferenceGrant in toNamespace lets routes (`kind`, HTTPRoute when absent) of fromNamespace reference Service toName. */
  readonly referenceGrantAllows: (
    fromNamespace: string,
    toNamespace: string,
    toName: string,
    kind?: RouteKind,
  ) => boolean;
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
  /** HTTPRoute when absent. TCPRoute backends may have any appProtocol (bytes are spliced). */
  readonly routeKind?: RouteKind;
}

export type Obj = Readonly<Record<string, unknown>>;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A spec value for a message. Never throws: `String(v)` does when a spec object carries its own `toString`
 * or `valueOf` key (`port: {toString: x}`), which turned an invalid route into an exception (found by the
 * fuzzer, `npm run fuzz -- --target httproute`).
 */
export function describeValue(v: unknown): string {
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return String(v);
  return Array.isArray(v) ? 'a list' : 'an object';
}

export const MAX_MATCHES_PER_RULE = 64;
export const MAX_BACKENDS = 16;
export const MAX_HEADER_MATCHES = 16;
export const MAX_MODIFIER_ENTRIES = 16;
export const MAX_PATH_LENGTH = 1024;
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;
export const REDIRECT_CODES: readonly RedirectStatus[] = [301, 302, 303, 307, 308];
// Filters that may appear at most once per list (CEL in the CRD).
export const SINGLE_FILTERS = new Set([
  'RequestHeaderModifier',
  'ResponseHeaderModifier',
  'RequestRedirect',
  'URLRewrite',
  'CORS',
]);
export const DEFAULT_RETRY_ATTEMPTS = 2; // Istio's default when the stanza gives none

/** Collects the problems of one rule; the rule is dropped when any is recorded. */
export class RuleProblems {
  readonly list: RouteProblem[] = [];
  invalid(field: string, message: string, reason = 'UnsupportedValue'): null {
    this.list.push({ code: 'FERRY_ROUTE_INVALID', field, reason, message });
    return null;
  }
}

/** The CEL checks on Exact/PathPrefix values; null when fine. */
export function invalidPathValue(value: string): string | null {
  if (!value.startsWith('/')) return 'must start with "/"';
  if (!PATH_CHARS.test(value)) return 'contains characters not allowed in a path';
  if (/\/\/|\/\.\/|\/\.\.\/|%2f|%2F|#/.test(value)) return 'must not contain "//", "/./", "/../", "%2f" or "#"';
  if (/\/\.\.?$/.test(value)) return 'must not end with "/." or "/.."';
  return null;
}

/**
 * A Service backendRef: the Service, null when it does not resolve (recorded in `unresolved`, the share
 * answers 500), undefined when the ref itself is malformed (recorded in `p`, the rule is dropped).
 */
export function resolveBackendRef(
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
    return fail(
      'InvalidKind',
      `backendRef ${describeValue(group)}/${describeValue(kind)} ${name}: only Services are supported`,
    );
  }
  if (!Number.isInteger(b.port) || (b.port as number) < 1 || (b.port as number) > 65535) {
    p.invalid(`${at}.port`, 'is required for a Service backendRef (1..65535)');
    return undefined;
  }
  const port = b.port as number;
  if (namespace !== scope.namespace && scope.needsReferenceGrant) {
    if (!scope.ctx.referenceGrantAllows(scope.namespace, namespace, name, scope.routeKind ?? 'HTTPRoute')) {
      return fail('RefNotPermitted', `backendRef ${namespace}/${name}: no ReferenceGrant in ${namespace} allows it`);
    }
  }
  const svc = scope.ctx.service(namespace, name);
  if (svc === undefined) return fail('BackendNotFound', `backendRef Service ${namespace}/${name} not found`);
  const sp = svc.ports.find((x) => x.port === port);
  if (sp === undefined) return fail('BackendNotFound', `backendRef Service ${namespace}/${name} has no port ${port}`);
  if (sp.appProtocol === 'udp' || (sp.appProtocol === 'tcp' && scope.routeKind !== 'TCPRoute')) {
    return fail('UnsupportedProtocol', `backendRef ${namespace}/${name}:${port} has appProtocol ${sp.appProtocol}`);
  }
  return { namespace, name, port };
}

/**
 * How a ReferenceGrant permission is written in the waypoint config and the L7 resources:
 * `fromNs|toNs|serviceName` for HTTPRoutes (`*` = any Service), `…|GRPCRoute` or `…|TCPRoute` for the others.
 */
export function referenceGrantKey(from: string, to: string, name: string, kind: RouteKind = 'HTTPRoute'): string {
  return kind === 'HTTPRoute' ? `${from}|${to}|${name}` : `${from}|${to}|${name}|${kind}`;
}

/** A referenceGrantAllows over a set of referenceGrantKey strings. */
export function grantsAllow(grants: ReadonlySet<string>): CompileContext['referenceGrantAllows'] {
  return (from, to, name, kind) =>
    grants.has(referenceGrantKey(from, to, name, kind)) || grants.has(referenceGrantKey(from, to, '*', kind));
}
