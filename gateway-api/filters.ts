// HTTPRoute filters applied to one request or response (reference gateway-api-anchor.md §1.4): header
// modifiers (set overwrites, add appends comma-joined, remove deletes; names case-insensitive), path
// rewrites including the normative ReplacePrefixMatch table, redirect Location (well-known ports omitted),
// mirror sampling. Pure: headers are lower-cased name → values maps; nothing is mutated in place.
import type { HeaderModifier, PathModifier, RequestMirror, RequestRedirect, RouteMatch } from './types.ts';

export type HeaderMap = ReadonlyMap<string, readonly string[]>;

export function applyHeaderModifier(headers: HeaderMap, m: HeaderModifier): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of headers) out.set(k, [...v]);
  for (const { name, value } of m.set) out.set(name, [value]);
  for (const { name, value } of m.add) {
    const existing = out.get(name);
    out.set(name, existing === undefined || existing.length === 0 ? [value] : [`${existing.join(',')},${value}`]);
  }
  for (const name of m.remove) out.delete(name);
  return out;
}

/** The path after a URLRewrite/redirect path modifier; `path` has no query string. */
export function rewritePath(path: string, modifier: PathModifier, match: RouteMatch): string {
  if (modifier.type === 'ReplaceFullPath') return modifier.value;
  const prefix = match.path.type === 'PathPrefix' ? match.path.value : '/';
  // The matched prefix covers whole segments; what follows it starts with "/" or is empty.
  const rest = prefix === '/' ? path : path.slice(prefix.length);
  const replacement = modifier.value.replace(/\/+$/, '');
  const joined = `${replacement}${rest.startsWith('/') || rest === '' ? rest : `/${rest}`}`;
  return joined === '' ? '/' : joined.startsWith('/') ? joined : `/${joined}`;
}

export interface RedirectInput {
  readonly scheme: 'http' | 'https';
  /** The request's Host (may carry ":port"). */
  readonly host: string;
  /** The Service port the request came to. */
  readonly listenerPort: number;
  readonly path: string;
  /** Raw query without "?" ('' when absent). */
  readonly query: string;
}

const WELL_KNOWN_PORT = { http: 80, https: 443 } as const;

function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

export function redirectLocation(r: RequestRedirect, req: RedirectInput, match: RouteMatch): string {
  const scheme = r.scheme ?? req.scheme;
  const host = r.hostname ?? hostWithoutPort(req.host);
  // Unset port: a changed scheme brings its well-known port, otherwise the port the request came to.
  const port = r.port ?? (r.scheme !== null ? WELL_KNOWN_PORT[r.scheme] : req.listenerPort);
  const portPart = port === WELL_KNOWN_PORT[scheme] ? '' : `:${port}`;
  const path = r.path === null ? req.path : rewritePath(req.path, r.path, match);
  return `${scheme}://${host}${portPart}${path}${req.query === '' ? '' : `?${req.query}`}`;
}

export function mirrorSampled(m: RequestMirror, random01: number): boolean {
  return random01 * m.denominator < m.numerator;
}
