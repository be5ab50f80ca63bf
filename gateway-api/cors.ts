// The HTTPRoute CORS filter (reference gateway-api-anchor.md §1.4): preflight answers and the headers an
// actual response gets. Origins match exactly (scheme://host[:port], case-insensitive) or through `*`
// wildcards; with allowCredentials the allowed origin/methods/headers are echoed, never `*`. A preflight
// from an origin that is not allowed gets 403. Pure.
import type { CorsPolicy, RequestView } from './types.ts';

function header(req: RequestView, name: string): string | null {
  const v = req.headers.get(name);
  return v === undefined || v.length === 0 ? null : v.join(',');
}

function wildcardToRegex(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`, 'i');
}

export function originAllowed(cors: CorsPolicy, origin: string): boolean {
  return cors.allowOrigins.some((p) => p === '*' || wildcardToRegex(p).test(origin));
}

function allowOriginValue(cors: CorsPolicy, origin: string): string {
  return cors.allowOrigins.includes('*') && !cors.allowCredentials ? '*' : origin;
}

export function corsPreflight(
  cors: CorsPolicy,
  req: RequestView,
): { readonly status: 204; readonly headers: Map<string, string> } | { readonly status: 403 } | null {
  const origin = header(req, 'origin');
  const method = header(req, 'access-control-request-method');
  if (req.method !== 'OPTIONS' || origin === null || method === null) return null;
  if (!originAllowed(cors, origin)) return { status: 403 };
  const headers = new Map<string, string>();
  headers.set('access-control-allow-origin', allowOriginValue(cors, origin));
  const wildMethods = cors.allowMethods.includes('*');
  headers.set(
    'access-control-allow-methods',
    wildMethods ? (cors.allowCredentials ? method : '*') : cors.allowMethods.join(', '),
  );
  const requested = header(req, 'access-control-request-headers');
  if (cors.allowHeaders.includes('*')) {
    const value = cors.allowCredentials ? requested : '*';
    if (value !== null) headers.set('access-control-allow-headers', value);
  } else if (cors.allowHeaders.length > 0) {
    headers.set('access-control-allow-headers', cors.allowHeaders.join(', '));
  }
  if (cors.allowCredentials) headers.set('access-control-allow-credentials', 'true');
  headers.set('access-control-max-age', String(cors.maxAgeSeconds));
  if (!cors.allowOrigins.includes('*') || cors.allowCredentials) headers.set('vary', 'Origin');
  return { status: 204, headers };
}

/** Headers for an actual (non-preflight) response; empty when there is no Origin or it is not allowed. */
export function corsResponseHeaders(cors: CorsPolicy, req: RequestView): Map<string, string> {
  const out = new Map<string, string>();
  const origin = header(req, 'origin');
  if (origin === null || !originAllowed(cors, origin)) return out;
  out.set('access-control-allow-origin', allowOriginValue(cors, origin));
  if (cors.allowCredentials) out.set('access-control-allow-credentials', 'true');
  if (cors.exposeHeaders.length > 0) out.set('access-control-expose-headers', cors.exposeHeaders.join(', '));
  return out;
}
