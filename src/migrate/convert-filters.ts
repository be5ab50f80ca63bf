// VirtualService route operations → HTTPRoute filters (docs/migration.md "Filters"): header operations
// (request/response set/add/remove) → Request/ResponseHeaderModifier, `rewrite` → URLRewrite, `redirect` →
// RequestRedirect, `mirror`/`mirrors` (+ percentage) → RequestMirror, `corsPolicy` → CORS. A field without an equivalent is
// returned as a not-converted line (`field: why`) or, where losing it changes the response, as the reason
// the whole operation cannot be converted. Pure.

import { describeValue } from '../../gateway-api/compile-common.ts';
import type { PathMatchYaml } from './convert-match.ts';
import { parseIstioDurationMs } from './istio-values.ts';
import { type BackendYaml, type Filter, isObj, type Obj } from './types.ts';

const HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;
const REDIRECT_CODES = [301, 302, 303, 307, 308];

/** `headers: {request: {set, add, remove}, response: {…}}` → header modifier filters. */
export function convertHeaderOps(h: Obj, at: string): { filters: Filter[]; notConverted: string[] } {
  const filters: Filter[] = [];
  const notConverted: string[] = [];
  for (const [side, type, key] of [
    ['request', 'RequestHeaderModifier', 'requestHeaderModifier'],
    ['response', 'ResponseHeaderModifier', 'responseHeaderModifier'],
  ] as const) {
    const ops = h[side];
    if (ops === undefined) continue;
    if (!isObj(ops)) {
      notConverted.push(`${at}.${side}: must be an object`);
      continue;
    }
    const modifier: Record<string, unknown> = {};
    for (const op of ['set', 'add'] as const) {
      if (!isObj(ops[op])) continue;
      const list = Object.entries(ops[op])
        .filter(([, v]) => typeof v === 'string')
        .map(([name, value]) => ({ name, value: value as string }));
      if (list.length > 0) modifier[op] = list;
    }
    if (Array.isArray(ops.remove)) {
      const remove = ops.remove.filter((n) => typeof n === 'string');
      if (remove.length > 0) modifier.remove = remove;
    }
    for (const k of Object.keys(ops)) {
      if (!['set', 'add', 'remove'].includes(k)) notConverted.push(`${at}.${side}.${k}: no HTTPRoute equivalent`);
    }
    if (Object.keys(modifier).length > 0) filters.push({ type, [key]: modifier });
  }
  for (const k of Object.keys(h)) {
    if (k !== 'request' && k !== 'response') notConverted.push(`${at}.${k}: no HTTPRoute equivalent`);
  }
  return { filters, notConverted };
}

/** `rewrite` → URLRewrite for a rule with the given single path match; null when it rewrites nothing. */
export function convertRewrite(r: Obj, at: string, path: PathMatchYaml | undefined): Filter | null | string {
  if (r.uriRegexRewrite !== undefined) return 'uriRegexRewrite has no HTTPRoute equivalent';
  const rewrite: Record<string, unknown> = {};
  if (typeof r.uri === 'string') {
    if (path?.type === 'PathPrefix' && path.value !== '/') {
      rewrite.path = { type: 'ReplacePrefixMatch', replacePrefixMatch: r.uri };
    } else if (path?.type === 'Exact') {
      rewrite.path = { type: 'ReplaceFullPath', replaceFullPath: r.uri };
    } else {
      // Envoy replaces a regex match or the implicit "/" prefix character-wise; a URLRewrite cannot.
      return `uri rewrite ${JSON.stringify(r.uri)} needs an exact or (non-root) prefix uri match to be expressed as a URLRewrite`;
    }
  }
  if (typeof r.authority === 'string') {
    if (!HOSTNAME.test(r.authority))
      return `authority ${JSON.stringify(r.authority)} is not a plain hostname (URLRewrite cannot set a port)`;
    rewrite.hostname = r.authority;
  }
  for (const k of Object.keys(r)) {
    if (!['uri', 'authority'].includes(k)) return `${at}.${k} has no HTTPRoute equivalent`;
  }
  return Object.keys(rewrite).length === 0 ? null : { type: 'URLRewrite', urlRewrite: rewrite };
}

/** `redirect` → RequestRedirect (Istio's default status is 301, Gateway API's 302: always written). */
export function convertRedirect(r: Obj, at: string): Filter | string {
  const redirect: Record<string, unknown> = {};
  if (typeof r.scheme === 'string') {
    if (r.scheme !== 'http' && r.scheme !== 'https') return `scheme ${JSON.stringify(r.scheme)} must be http or https`;
    redirect.scheme = r.scheme;
  }
  if (typeof r.authority === 'string') {
    const [host, port] = r.authority.split(':');
    if (host === undefined || !HOSTNAME.test(host)) return `authority ${JSON.stringify(r.authority)} is not a hostname`;
    redirect.hostname = host;
    if (port !== undefined) redirect.port = Number(port);
  }
  if (typeof r.uri === 'string') redirect.path = { type: 'ReplaceFullPath', replaceFullPath: r.uri };
  if (r.port !== undefined) {
    if (!Number.isInteger(r.port) || (r.port as number) < 1 || (r.port as number) > 65535) {
      return `port ${describeValue(r.port)} is not a port number`;
    }
    redirect.port = r.port;
  }
  if (r.derivePort !== undefined && r.derivePort !== 'FROM_PROTOCOL_DEFAULT') {
    return `derivePort ${describeValue(r.derivePort)} has no HTTPRoute equivalent`;
  }
  const code = r.redirectCode ?? 301;
  if (!REDIRECT_CODES.includes(code as number))
    return `redirectCode ${describeValue(code)} is not one of ${REDIRECT_CODES.join(', ')}`;
  redirect.statusCode = code;
  for (const k of Object.keys(r)) {
    if (!['scheme', 'authority', 'uri', 'port', 'derivePort', 'redirectCode'].includes(k)) {
      return `${at}.${k} has no HTTPRoute equivalent`;
    }
  }
  return { type: 'RequestRedirect', requestRedirect: redirect };
}

/** `mirror` + `mirrorPercentage` (or the older `mirrorPercent`), and `mirrors[]` → RequestMirror filters. */
export function convertMirrors(
  route: Obj,
  at: string,
  backend: (d: unknown, at: string) => BackendYaml | string,
): { filters: Filter[]; notConverted: string[] } {
  const filters: Filter[] = [];
  const notConverted: string[] = [];
  const one = (dest: unknown, percentage: unknown, here: string, pctField: string): void => {
    const b = backend(dest, `${here}`);
    if (typeof b === 'string') {
      notConverted.push(`${b}: the mirror is not converted`);
      return;
    }
    const mirror: Record<string, unknown> = {
      backendRef:
        b.namespace === undefined
          ? { name: b.name, port: b.port }
          : { name: b.name, namespace: b.namespace, port: b.port },
    };
    if (percentage !== undefined) {
      const share = toShare(percentage);
      if (share === null) {
        notConverted.push(
          `${pctField}: ${JSON.stringify(percentage)} is not a percentage 0–100: the mirror is not converted`,
        );
        return;
      }
      Object.assign(mirror, share);
    }
    filters.push({ type: 'RequestMirror', requestMirror: mirror });
  };
  if (route.mirror !== undefined) {
    const pct = isObj(route.mirrorPercentage) ? route.mirrorPercentage.value : route.mirrorPercent;
    const field = route.mirrorPercentage !== undefined ? `${at}.mirrorPercentage` : `${at}.mirrorPercent`;
    one(route.mirror, pct, `${at}.mirror`, field);
  }
  if (Array.isArray(route.mirrors)) {
    route.mirrors.forEach((m, i) => {
      const here = `${at}.mirrors[${i}]`;
      if (!isObj(m)) {
        notConverted.push(`${here}: must be an object: the mirror is not converted`);
        return;
      }
      one(
        m.destination,
        isObj(m.percentage) ? m.percentage.value : undefined,
        `${here}.destination`,
        `${here}.percentage`,
      );
    });
  }
  return { filters, notConverted };
}

/** A percentage (double, 0–100) → `percent` when whole, else the exact `fraction` (per million, reduced). */
function toShare(v: unknown): { percent: number } | { fraction: { numerator: number; denominator: number } } | null {
  if (typeof v !== 'number' || !(v >= 0 && v <= 100)) return null;
  if (Number.isInteger(v)) return { percent: v };
  let numerator = Math.round(v * 10_000);
  let denominator = 1_000_000;
  const g = gcd(numerator, denominator);
  numerator /= g;
  denominator /= g;
  return { fraction: { numerator, denominator } };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * `corsPolicy` → a CORS filter (Gateway API experimental). Exact origins (and the deprecated `allowOrigin`
 * strings) carry over; prefix/regex origins have no equivalent (an HTTPRoute origin is `*` or a
 * `scheme://host[:port]` pattern) and are listed, so the converted policy allows fewer origins, never more.
 */
export function convertCors(c: Obj, at: string): { filter: Filter | null; notConverted: string[] } {
  const notConverted: string[] = [];
  const origins: string[] = [];
  (Array.isArray(c.allowOrigins) ? c.allowOrigins : []).forEach((o, i) => {
    if (isObj(o) && typeof o.exact === 'string') origins.push(o.exact);
    else if (isObj(o) && o.regex === '.*') origins.push('*');
    else notConverted.push(`${at}.allowOrigins[${i}]: only exact origins have an HTTPRoute CORS equivalent`);
  });
  if (Array.isArray(c.allowOrigin)) for (const o of c.allowOrigin) if (typeof o === 'string') origins.push(o);
  const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s) => typeof s === 'string') : []);
  const cors: Record<string, unknown> = {};
  if (origins.length > 0) cors.allowOrigins = origins;
  for (const key of ['allowMethods', 'allowHeaders', 'exposeHeaders'] as const) {
    const list = strings(c[key]);
    if (list.length > 0) cors[key] = list;
  }
  if (typeof c.allowCredentials === 'boolean') cors.allowCredentials = c.allowCredentials;
  if (c.maxAge !== undefined) {
    const ms = parseIstioDurationMs(c.maxAge);
    if (ms === null || ms < 1000)
      notConverted.push(`${at}.maxAge: ${JSON.stringify(c.maxAge)} is not a duration of at least 1s`);
    else cors.maxAge = Math.ceil(ms / 1000);
  }
  for (const k of Object.keys(c)) {
    if (
      ![
        'allowOrigins',
        'allowOrigin',
        'allowMethods',
        'allowHeaders',
        'exposeHeaders',
        'allowCredentials',
        'maxAge',
      ].includes(k)
    ) {
      notConverted.push(`${at}.${k}: no HTTPRoute CORS equivalent`);
    }
  }
  if (origins.length === 0) {
    notConverted.push(`${at}: no origin could be converted: the CORS policy is not converted`);
    return { filter: null, notConverted };
  }
  return { filter: { type: 'CORS', cors }, notConverted };
}
