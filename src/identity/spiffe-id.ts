// SPIFFE identities of Istio's shape: spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.
// Parsed once at the edge into a typed value; printed only by formatSpiffeId. Never throws on bad input:
// callers get a Result naming what was wrong (docs/architecture.md "Identity", docs/architecture.md "Identity").

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

const SCHEME = 'spiffe://';
// Trust domains: lowercase letters, digits, dot, dash, underscore (SPIFFE ID spec §2.1).
const TRUST_DOMAIN_RE = /^[a-z0-9._-]{1,255}$/;
// Kubernetes namespaces and service accounts are DNS labels/subdomains; keep to the path-segment charset.
const SEGMENT_RE = /^[A-Za-z0-9._-]{1,253}$/;

export function parseSpiffeId(text: string): ParseResult<SpiffeId> {
  if (typeof text !== 'string') return { ok: false, error: 'SPIFFE ID must be a string' };
  if (!text.startsWith(SCHEME))
    return { ok: false, error: `SPIFFE ID ${JSON.stringify(text)} must start with spiffe://` };
  const rest = text.slice(SCHEME.length);
  const parts = rest.split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') {
    return { ok: false, error: `SPIFFE ID ${JSON.stringify(text)} must have the form spiffe://<td>/ns/<ns>/sa/<sa>` };
  }
  const [trustDomain, , namespace, , serviceAccount] = parts as [string, string, string, string, string];
  const tdError = validateTrustDomain(trustDomain);
  if (tdError !== null) return { ok: false, error: `SPIFFE ID ${JSON.stringify(text)}: ${tdError}` };
  if (!SEGMENT_RE.test(namespace)) return { ok: false, error: `SPIFFE ID ${JSON.stringify(text)}: bad namespace` };
  if (!SEGMENT_RE.test(serviceAccount)) {
    return { ok: false, error: `SPIFFE ID ${JSON.stringify(text)}: bad service account` };
  }
  return { ok: true, value: { trustDomain, namespace, serviceAccount } };
}

/** Returns null when the trust domain is valid, else the reason. */
export function validateTrustDomain(td: string): string | null {
  if (!TRUST_DOMAIN_RE.test(td)) return `bad trust domain ${JSON.stringify(td)} (lowercase letters, digits, . - _)`;
  return null;
}

export function spiffeId(trustDomain: string, namespace: string, serviceAccount: string): SpiffeId {
  const parsed = parseSpiffeId(`${SCHEME}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`);
  if (!parsed.ok) throw new TypeError(parsed.error);
  return parsed.value;
}

export function formatSpiffeId(id: SpiffeId): string {
  return `${SCHEME}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Istio principal form: the SPIFFE ID without the scheme (AuthorizationPolicy `principals`). */
export function principalOf(id: SpiffeId): string {
  return `${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

export function sameSpiffeId(a: SpiffeId, b: SpiffeId): boolean {
  return a.trustDomain === b.trustDomain && a.namespace === b.namespace && a.serviceAccount === b.serviceAccount;
}
