// URL → what is asked for. Kubernetes paths: /api/v1/… (core group) and /apis/<group>/<version>/…, then
// optionally `watch/`, `namespaces/<ns>/`, `<resource>[/<name>[/<subresource>]]`. Pure.
import { badRequest } from './status.ts';

export type Route =
  | { readonly kind: 'version' | 'health' | 'api' | 'apis' | 'openapi-v2' | 'openapi-v3-root' }
  | { readonly kind: 'openapi-v3-gv'; readonly group: string; readonly version: string }
  | { readonly kind: 'group'; readonly group: string }
  | { readonly kind: 'resource-list'; readonly group: string; readonly version: string }
  | {
      readonly kind: 'resource';
      readonly group: string;
      readonly version: string;
      readonly resource: string;
      /** null when the path names no namespace (cluster-scoped, or a list across namespaces). */
      readonly namespace: string | null;
      readonly name: string | null;
      readonly subresource: string | null;
      /** A `/watch/` path (the deprecated form kubectl no longer uses, still served). */
      readonly watchPath: boolean;
    }
  | { readonly kind: 'unknown' };

const MAX_PATH_LENGTH = 4096;

export function parseRoute(pathname: string): Route {
  if (pathname.length > MAX_PATH_LENGTH) throw badRequest('request path too long');
  let segs: string[];
  try {
    segs = pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    throw badRequest('malformed percent-encoding in the request path');
  }
  const [first, second, third] = segs;
  if (segs.length === 1 && first === 'version') return { kind: 'version' };
  if (segs.length >= 1 && (first === 'healthz' || first === 'livez' || first === 'readyz')) return { kind: 'health' };
  if (first === 'openapi') {
    if (second === 'v2' && segs.length === 2) return { kind: 'openapi-v2' };
    if (second === 'v3' && segs.length === 2) return { kind: 'openapi-v3-root' };
    if (second === 'v3' && segs[2] === 'api' && segs[3] !== undefined && segs.length === 4) {
      return { kind: 'openapi-v3-gv', group: '', version: segs[3] };
    }
    if (second === 'v3' && segs[2] === 'apis' && segs.length === 5) {
      return { kind: 'openapi-v3-gv', group: segs[3] ?? '', version: segs[4] ?? '' };
    }
    return { kind: 'unknown' };
  }
  if (first === 'api') {
    if (segs.length === 1) return { kind: 'api' };
    if (second !== 'v1') return { kind: 'unknown' };
    if (segs.length === 2) return { kind: 'resource-list', group: '', version: 'v1' };
    return resourceRoute('', 'v1', segs.slice(2));
  }
  if (first === 'apis') {
    if (segs.length === 1) return { kind: 'apis' };
    if (segs.length === 2) return { kind: 'group', group: second ?? '' };
    if (segs.length === 3) return { kind: 'resource-list', group: second ?? '', version: third ?? '' };
    return resourceRoute(second ?? '', third ?? '', segs.slice(3));
  }
  return { kind: 'unknown' };
}

function resourceRoute(group: string, version: string, rest: string[]): Route {
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | null = null;
  // `namespaces/NAME/status` is the Namespace's own subresource; `namespaces/NS/<resource>…` is a scope.
  if (
    rest[0] === 'namespaces' &&
    rest.length >= 3 &&
    !(rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))
  ) {
    namespace = rest[1] ?? '';
    rest = rest.slice(2);
  }
  if (rest.length === 0 || rest.length > 3) return { kind: 'unknown' };
  return {
    kind: 'resource',
    group,
    version,
    resource: rest[0] ?? '',
    namespace,
    name: rest[1] ?? null,
    subresource: rest[2] ?? null,
    watchPath,
  };
}
