// Istio value forms the converters share: service hosts (`reviews`, `reviews.ns`, `reviews.ns.svc.cluster.local`),
// protobuf durations (`1.5s`, `100ms`) and their GEP-2257 form, and StringMatch (exact / prefix / regex) as
// a Gateway API value match (Exact or an anchored RE2 regular expression). Pure.
import { isObj } from './types.ts';

export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The Kubernetes Service an Istio host names, resolved as Istio resolves short names (relative to the
 * namespace of the object that names it); null for wildcards and hosts outside the cluster (ServiceEntries).
 */
export function resolveServiceHost(host: string, ownNamespace: string): ServiceRef | null {
  const parts = host.toLowerCase().split('.');
  if (parts.some((p) => !LABEL.test(p))) return null;
  const [name, ns, svc] = parts as [string, string | undefined, string | undefined];
  if (parts.length === 1) return { namespace: ownNamespace, name };
  if (parts.length === 2) return { namespace: ns as string, name };
  // name.ns.svc[.cluster-domain]: anything else (example.com) is not a Service of this cluster.
  return svc === 'svc' ? { namespace: ns as string, name } : null;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  ns: 1e-6,
};

/** An Istio duration (Go/protobuf form, e.g. `10s`, `0.5s`, `1m30s`) in ms, or null when not one. */
export function parseIstioDurationMs(v: unknown): number | null {
  if (typeof v !== 'string' || v.length === 0 || v.length > 32) return null;
  let rest = v;
  let ms = 0;
  const part = /^([0-9]+(?:\.[0-9]+)?)(h|ms|m|s|us|µs|ns)/;
  while (rest.length > 0) {
    const m = part.exec(rest);
    if (m === null) return null;
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
    rest = rest.slice(m[0].length);
  }
  return ms;
}

/** ms → a GEP-2257 duration (`1h30m`, `2s`, `250ms`); sub-millisecond values round up to 1ms. */
export function formatGatewayDuration(msIn: number): string {
  let ms = Math.ceil(msIn);
  if (ms === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    const n = Math.floor(ms / size);
    if (n > 0) {
      parts.push(`${n}${unit}`);
      ms -= n * size;
    }
  }
  if (ms > 0) parts.push(`${ms}ms`);
  return parts.join('');
}

export type ValueMatchYaml = { readonly type: 'Exact' | 'RegularExpression'; readonly value: string };

/** RE2 metacharacters escaped, so a literal prefix can start a regular expression. */
export function escapeRegex(s: string): string {
  return s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

/**
 * An Istio StringMatch → a Gateway API value match, or the reason it has none. Istio's `regex` is an RE2
 * full match, as is Gateway API's; `prefix` becomes `<escaped prefix>.*`.
 */
export function convertStringMatch(v: unknown): { ok: true; match: ValueMatchYaml } | { ok: false; reason: string } {
  if (!isObj(v)) return { ok: false, reason: 'is not a StringMatch object' };
  const keys = Object.keys(v);
  if (keys.length !== 1) return { ok: false, reason: 'needs exactly one of exact, prefix, regex' };
  if (typeof v.exact === 'string') return { ok: true, match: { type: 'Exact', value: v.exact } };
  if (typeof v.prefix === 'string') {
    return { ok: true, match: { type: 'RegularExpression', value: `${escapeRegex(v.prefix)}.*` } };
  }
  if (typeof v.regex === 'string') return { ok: true, match: { type: 'RegularExpression', value: v.regex } };
  return { ok: false, reason: `${keys[0]} is not exact, prefix or regex` };
}
