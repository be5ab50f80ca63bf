// Gateway API HTTPRoute (v1.6 standard channel + experimental `retry`), GRPCRoute (v1) and TCPRoute
// (experimental) as the waypoint runs them: routes
// validated and compiled once (compile.ts), attached to Service ports (route-table.ts), matched per request
// (match.ts), their filters applied (filters.ts). Shared by the controller (status) and the waypoint
// (routing), so both see exactly the same accepted/dropped rules. Types only; nothing here does I/O.

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** `<namespace>/<name>` of a route (unique per kind). */
export type RouteKey = string;

/** The route kinds Ferry compiles; on one Service port the most specific kind present wins (GEP-1294). */
export const ROUTE_KINDS = ['GRPCRoute', 'HTTPRoute', 'TCPRoute'] as const;
export type RouteKind = (typeof ROUTE_KINDS)[number];

/** A Kubernetes object compiled by gateway-api/ or the waypoint: identity, ordering facts, the spec as written. */
export interface ObjectInput {
  readonly namespace: string;
  readonly name: string;
  /** metadata.creationTimestamp in ms, or null; "oldest route wins" ties then fall back to `sequence`. */
  readonly creationTimestampMs: number | null;
  /** Order in which the source first saw the object. */
  readonly sequence: number;
  /** `spec` as written (JSON-compatible); validated by the compiler, never trusted. */
  readonly spec: unknown;
}

export type PathMatch =
  | { readonly type: 'Exact'; readonly value: string }
  /** Segment-aware; `value` is stored without a trailing `/` (except the root `/`). */
  | { readonly type: 'PathPrefix'; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly value: string; readonly regex: RegExp };

export type ValueMatch =
  | { readonly type: 'Exact'; readonly value: string }
  | { readonly type: 'RegularExpression'; readonly value: string; readonly regex: RegExp };

/** Header name lower-cased (case-insensitive); only the first entry per name is kept. */
export interface HeaderMatch {
  readonly name: string;
  readonly match: ValueMatch;
}

/** Query parameter name as written (case-sensitive); only the first entry per name is kept. */
export interface QueryParamMatch {
  readonly name: string;
  readonly match: ValueMatch;
}

/**
 * A GRPCRoute `method` match as written. It is compiled into `RouteMatch.path` (gRPC requests are
 * `POST /<service>/<method>`), and kept here for GRPCRoute precedence (service, then method characters).
 */
export interface GrpcMethodMatch {
  readonly type: 'Exact' | 'RegularExpression';
  readonly service: string | null;
  readonly method: string | null;
}

/** One `matches[]` entry: all fields AND. A rule without matches gets `[{path: PathPrefix /}]`. */
export interface RouteMatch {
  readonly path: PathMatch;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly QueryParamMatch[];
  readonly method: HttpMethod | null;
  /** GRPCRoute matches only: the method match as written (null = any method). */
  readonly grpc?: GrpcMethodMatch | null;
}

/** Header names lower-cased. */
export interface HeaderModifier {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export type PathModifier =
  | { readonly type: 'ReplaceFullPath'; readonly value: string }
  | { readonly type: 'ReplacePrefixMatch'; readonly value: string };

export type RedirectStatus = 301 | 302 | 303 | 307 | 308;

export interface RequestRedirect {
  readonly scheme: 'http' | 'https' | null;
  readonly hostname: string | null;
  readonly path: PathModifier | null;
  readonly port: number | null;
  readonly statusCode: RedirectStatus;
}

export interface UrlRewrite {
  readonly hostname: string | null;
  readonly path: PathModifier | null;
}

/** A Service in the mesh a route sends to (or mirrors to). */
export interface ServiceBackend {
  readonly namespace: string;
  readonly name: string;
  readonly port: number;
}

export interface RequestMirror {
  /** null when the backendRef did not resolve: the mirror is not configured (status says why). */
  readonly backend: ServiceBackend | null;
  /** Share of requests mirrored, as numerator/denominator (percent p → p/100; neither → 1/1). */
  readonly numerator: number;
  readonly denominator: number;
}

export interface CorsPolicy {
  /** `*` alone, or `scheme://host[:port]` patterns where `*` is a left-greedy wildcard. */
  readonly allowOrigins: readonly string[];
  readonly allowCredentials: boolean;
  /** Upper-case methods, or [`*`]. */
  readonly allowMethods: readonly string[];
  /** Lower-cased header names, or [`*`]. */
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  /** Seconds; 5 when unset. */
  readonly maxAgeSeconds: number;
}

export type HttpFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly modifier: HeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly modifier: HeaderModifier }
  | { readonly type: 'RequestRedirect'; readonly redirect: RequestRedirect }
  | { readonly type: 'URLRewrite'; readonly rewrite: UrlRewrite }
  | { readonly type: 'RequestMirror'; readonly mirror: RequestMirror }
  | { readonly type: 'CORS'; readonly cors: CorsPolicy };

export type BackendRefProblem = 'BackendNotFound' | 'InvalidKind' | 'RefNotPermitted' | 'UnsupportedProtocol';

export interface RouteBackend {
  /** null when the ref did not resolve: this backend's share of traffic gets 500. */
  readonly service: ServiceBackend | null;
  readonly problem: BackendRefProblem | null;
  /** 0..1_000_000; 0 never receives traffic. */
  readonly weight: number;
  /** Per-backendRef filters: run only when this backend is chosen. */
  readonly filters: readonly HttpFilter[];
}

export interface RouteTimeouts {
  /** Whole request incl. retries; null = no limit (unset or `0s`). */
  readonly requestMs: number | null;
  /** One attempt; null = no limit (unset or `0s`). */
  readonly backendRequestMs: number | null;
}

export interface RetryPolicy {
  /** Retries after the first try (not total tries). */
  readonly attempts: number;
  /** HTTP statuses that trigger a retry (400..599). Connection errors and per-try timeouts always do. */
  readonly codes: readonly number[];
  /** Minimum wait between attempts, ms. */
  readonly backoffMs: number;
}

export interface CompiledRule {
  readonly route: RouteKey;
  readonly ruleIndex: number;
  /** `rules[i].name`, or null. */
  readonly name: string | null;
  readonly matches: readonly RouteMatch[];
  /** Rule-level filters, in the order written. */
  readonly filters: readonly HttpFilter[];
  /** [] = no backendRefs → 500 (unless a redirect answers). */
  readonly backends: readonly RouteBackend[];
  readonly timeouts: RouteTimeouts;
  /** null = no retries (no `retry` stanza). */
  readonly retry: RetryPolicy | null;
}

/** What a parentRef attaches to. */
export type RouteParent =
  /** A Service frontend: `port` null = every port of the Service. `sectionName` (port name) resolved to `port`. */
  | { readonly kind: 'Service'; readonly namespace: string; readonly name: string; readonly port: number | null }
  /** The waypoint Gateway itself: every Service it serves. */
  | { readonly kind: 'Gateway'; readonly namespace: string; readonly name: string };

export interface CompiledRoute {
  /** HTTPRoute when absent (routes built before GRPCRoute/TCPRoute existed). */
  readonly kind?: RouteKind;
  readonly key: RouteKey;
  readonly namespace: string;
  readonly name: string;
  /** Creation time (ms) for "oldest route wins"; null sorts after any timestamp, then by `sequence`. */
  readonly creationTimestampMs: number | null;
  readonly sequence: number;
  readonly parents: readonly RouteParent[];
  /** Only the valid rules (invalid ones were dropped; see RouteStatus). */
  readonly rules: readonly CompiledRule[];
}

// ---- Status (gateway.networking.k8s.io RouteParentStatus) ----

export type ConditionType = 'Accepted' | 'ResolvedRefs' | 'PartiallyInvalid';

export interface RouteCondition {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  /** Gateway API reason, e.g. Accepted, NoMatchingParent, UnsupportedValue, BackendNotFound. */
  readonly reason: string;
  readonly message: string;
}

export interface RouteParentStatus {
  /** The parentRef as written (group, kind, namespace, name, port, sectionName). */
  readonly parentRef: Readonly<Record<string, string | number>>;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

export interface RouteStatus {
  /** HTTPRoute when absent. */
  readonly kind?: RouteKind;
  readonly key: RouteKey;
  readonly parents: readonly RouteParentStatus[];
}

export const FERRY_CONTROLLER_NAME = 'ferry.dev/waypoint-controller';

// ---- The request as matching sees it ----

export interface RequestView {
  readonly method: string;
  /** Path without the query string, as received (not decoded). */
  readonly path: string;
  /** Raw query string without `?` ('' when absent). */
  readonly query: string;
  /** Lower-cased header name → values (repeated headers keep their order). */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

/** The winning rule and which of its matches won (ReplacePrefixMatch needs the matched prefix). */
export interface RouteSelection {
  readonly rule: CompiledRule;
  readonly match: RouteMatch;
}

/** The routes attached to one Service port, one entry per (rule, match), in precedence order (§1.9). */
export interface RouteTable {
  /** Which kind of route the entries come from (HTTPRoute when absent). */
  readonly kind?: 'HTTPRoute' | 'GRPCRoute';
  readonly entries: readonly RouteSelection[];
}

/** The TCPRoute in effect on one Service port: its (one) rule's weighted backends, chosen per connection. */
export interface TcpRouteTable {
  readonly route: RouteKey;
  readonly rule: CompiledRule;
}
