// VirtualService `http[].match[]` (HTTPMatchRequest) → HTTPRoute `matches[]` (docs/migration.md "Matches").
// A match entry is converted whole or not at all: dropping one of its conditions would make it match more
// requests than Istio did, so an entry with a condition Gateway API cannot express is left out and listed.
// Entries restricted to other gateways than `mesh` never applied to mesh traffic and are skipped. Pure.
import { HTTP_METHODS } from '../../gateway-api/types.ts';
import { convertStringMatch, type ValueMatchYaml } from './istio-values.ts';
import { isObj, type Obj } from './types.ts';

export type PathMatchYaml = { readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value: string };

export interface MatchYaml {
  readonly path?: PathMatchYaml;
  readonly headers?: readonly { readonly name: string; readonly type: string; readonly value: string }[];
  readonly queryParams?: readonly { readonly name: string; readonly type: string; readonly value: string }[];
  readonly method?: string;
}

export type MatchOutcome =
  | { readonly kind: 'match'; readonly match: MatchYaml; readonly notes: readonly string[] }
  /** Applies only to gateways other than `mesh`: not part of mesh routing. */
  | { readonly kind: 'not-mesh' }
  | { readonly kind: 'unconvertible'; readonly reasons: readonly string[] };

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/;
/** Fields that only name or count a match, without changing what it matches. */
const COSMETIC = new Set(['name', 'statPrefix']);

/** Converts one `match[]` entry (`at` = `spec.http[i].match[j]`). */
export function convertMatch(m: unknown, at: string): MatchOutcome {
  if (!isObj(m)) return { kind: 'unconvertible', reasons: [`${at}: must be an object`] };
  if (Array.isArray(m.gateways) && !m.gateways.includes('mesh')) return { kind: 'not-mesh' };
  const reasons: string[] = [];
  const notes: string[] = [];
  const out: {
    path?: PathMatchYaml;
    headers?: MatchYaml['headers'];
    queryParams?: MatchYaml['queryParams'];
    method?: string;
  } = {};
  for (const key of Object.keys(m)) {
    const here = `${at}.${key}`;
    const v = m[key];
    switch (key) {
      case 'uri': {
        const path = convertUri(v, here, notes);
        if (typeof path === 'string') reasons.push(path);
        else out.path = path;
        break;
      }
      case 'method': {
        const method = isObj(v) && typeof v.exact === 'string' ? v.exact.toUpperCase() : null;
        if (method === null || !(HTTP_METHODS as readonly string[]).includes(method)) {
          reasons.push(
            `${here}: only an exact standard method (${HTTP_METHODS.join(', ')}) has an HTTPRoute equivalent`,
          );
        } else out.method = method;
        break;
      }
      case 'headers':
      case 'queryParams': {
        const list = convertNamed(v, here, key === 'headers', reasons);
        if (list !== null && list.length > 0) out[key] = list;
        break;
      }
      case 'gateways':
        break; // includes mesh: applies to mesh traffic as converted
      default:
        if (!COSMETIC.has(key)) reasons.push(`${here}: ${unsupportedReason(key)}`);
    }
  }
  if (reasons.length > 0) return { kind: 'unconvertible', reasons };
  return { kind: 'match', match: out, notes };
}

function convertUri(v: unknown, at: string, notes: string[]): PathMatchYaml | string {
  if (!isObj(v) || Object.keys(v).length !== 1) return `${at}: needs exactly one of exact, prefix, regex`;
  if (typeof v.exact === 'string') return { type: 'Exact', value: v.exact };
  if (typeof v.regex === 'string') return { type: 'RegularExpression', value: v.regex };
  if (typeof v.prefix === 'string') {
    const p = v.prefix === '' ? '/' : v.prefix;
    if (!p.endsWith('/')) {
      notes.push(
        `${at}: prefix ${JSON.stringify(p)} becomes a PathPrefix, which matches whole path segments (${p}, ${p}/…) where Istio also matched ${p}… (e.g. ${p}x)`,
      );
    }
    return { type: 'PathPrefix', value: p };
  }
  return `${at}: ${Object.keys(v)[0]} is not exact, prefix or regex`;
}

function convertNamed(
  v: unknown,
  at: string,
  header: boolean,
  reasons: string[],
): { name: string; type: string; value: string }[] | null {
  if (!isObj(v)) {
    reasons.push(`${at}: must be a map of name → StringMatch`);
    return null;
  }
  const out: { name: string; type: string; value: string }[] = [];
  for (const [name, sm] of Object.entries(v)) {
    const here = `${at}[${JSON.stringify(name)}]`;
    if (header && !HEADER_NAME.test(name)) {
      reasons.push(
        `${here}: ${JSON.stringify(name)} is not a header name an HTTPRoute can match (pseudo-headers are not)`,
      );
      continue;
    }
    // An empty StringMatch means "present with any value" in Istio.
    const converted: { ok: true; match: ValueMatchYaml } | { ok: false; reason: string } =
      isObj(sm) && Object.keys(sm).length === 0
        ? { ok: true, match: { type: 'RegularExpression', value: '.*' } }
        : convertStringMatch(sm);
    if (!converted.ok) {
      reasons.push(`${here}: ${converted.reason}`);
      continue;
    }
    out.push({ name, type: converted.match.type, value: converted.match.value });
  }
  return out;
}

function unsupportedReason(key: string): string {
  switch (key) {
    case 'sourceLabels':
    case 'sourceNamespace':
      return 'matching on the client workload has no HTTPRoute equivalent (a Service route applies to every client)';
    case 'authority':
      return 'matching on the authority has no equivalent in a Service-attached HTTPRoute';
    case 'port':
      return 'port matches are not converted (attach a route to one Service port with parentRefs[].port)';
    case 'withoutHeaders':
      return 'negative header matches have no HTTPRoute equivalent';
    case 'ignoreUriCase':
      return 'case-insensitive path matching has no HTTPRoute equivalent';
    case 'scheme':
      return 'scheme matches have no HTTPRoute equivalent';
    default:
      return 'no HTTPRoute equivalent';
  }
}

/** Is `m` an object with only the given keys? (for callers validating small stanzas) */
export function onlyKeys(m: Obj, keys: readonly string[]): string[] {
  return Object.keys(m).filter((k) => !keys.includes(k));
}
