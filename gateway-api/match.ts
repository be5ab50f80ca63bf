// Does a request match an HTTPRoute match entry, and which entry of a Service port's route table wins
// (reference gateway-api-anchor.md §1.3): Exact paths compare whole and case-sensitively, PathPrefix is
// segment-aware, regexes are already anchored; header names are case-insensitive and repeated request
// headers are joined with "," (RFC 9110 §5.3); query names are case-sensitive and the first value of a
// repeated parameter counts. Pure.
import type { RequestView, RouteMatch, RouteSelection, RouteTable, ValueMatch } from './types.ts';

export function pathPrefixMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path[prefix.length] === '/';
}

function valueMatches(m: ValueMatch, value: string): boolean {
  return m.type === 'Exact' ? m.value === value : m.regex.test(value);
}

/** Query string → name → values, %-decoded ("+" as space); names are case-sensitive. */
export function parseQuery(query: string): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, string[]>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = decodeComponent(eq < 0 ? part : part.slice(0, eq));
    const value = decodeComponent(eq < 0 ? '' : part.slice(eq + 1));
    const list = out.get(name);
    if (list === undefined) out.set(name, [value]);
    else list.push(value);
  }
  return out;
}

function decodeComponent(s: string): string {
  const plus = s.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus; // malformed escapes are matched as written
  }
}

export function requestMatches(
  match: RouteMatch,
  req: RequestView,
  query: ReadonlyMap<string, readonly string[]> = parseQuery(req.query),
): boolean {
  const p = match.path;
  const pathOk =
    p.type === 'Exact'
      ? req.path === p.value
      : p.type === 'PathPrefix'
        ? pathPrefixMatches(p.value, req.path)
        : p.regex.test(req.path);
  if (!pathOk) return false;
  if (match.method !== null && req.method !== match.method) return false;
  for (const h of match.headers) {
    const values = req.headers.get(h.name);
    if (values === undefined || !valueMatches(h.match, values.join(','))) return false;
  }
  for (const q of match.queryParams) {
    const first = query.get(q.name)?.[0];
    if (first === undefined || !valueMatches(q.match, first)) return false;
  }
  return true;
}

/** The first entry of the table (precedence order) that matches, or null (→ 404). */
export function selectRoute(table: RouteTable, req: RequestView): RouteSelection | null {
  const query = parseQuery(req.query);
  for (const entry of table.entries) {
    if (requestMatches(entry.match, req, query)) return entry;
  }
  return null;
}
