// VirtualService `retries` and `timeout` → HTTPRoute `retry` (experimental channel) and `timeouts`
// (docs/migration.md "Retries and timeouts"). Istio's `retryOn` is Envoy's x-envoy-retry-on list; an
// HTTPRoute retries on a list of status codes, and Ferry's waypoint always retries connection failures and
// per-try timeouts. Each Envoy condition maps to the statuses it stands for where it has any; the
// conditions that name no status (gRPC statuses in trailers, rate limiting, retriable headers) are listed
// as not converted. Pure.
import { formatGatewayDuration, parseIstioDurationMs } from './istio-values.ts';
import { isObj } from './types.ts';

/** Envoy's `5xx`: any 5xx response. The registered ones (RFC 9110, 6585, 2295, 2774, 4918, 8297). */
const ALL_5XX = [500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511];
/** Retried by Ferry's waypoint without a status code: connection failures, resets, refused streams. */
const CONNECTION_CONDITIONS = new Set(['connect-failure', 'reset', 'refused-stream', 'reset-before-request']);
const CONDITION_CODES: Readonly<Record<string, readonly number[]>> = {
  '5xx': ALL_5XX,
  'gateway-error': [502, 503, 504],
  'retriable-4xx': [409],
};
/** Istio's retry policy when `retries` gives no retryOn: connect-failure,refused-stream,unavailable,cancelled,503. */
const ISTIO_DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503';

export interface RetryConversion {
  /** `rules[].retry`, or null (no retries). */
  readonly retry: { readonly attempts: number; readonly codes: readonly number[] } | null;
  /** `rules[].timeouts`, or null. */
  readonly timeouts: { readonly request?: string; readonly backendRequest?: string } | null;
  /** What could not be carried, each one sentence (field: why). */
  readonly notConverted: readonly string[];
  /** Approximations a reviewer should know about. */
  readonly notes: readonly string[];
  /** No `retries` stanza: Istio sidecars applied their default retry policy, a waypoint will not. */
  readonly implicitDefault: boolean;
}

/** Converts one `http[]` route's `retries` and `timeout` (`at` = `spec.http[i]`). */
export function convertRetries(route: Readonly<Record<string, unknown>>, at: string): RetryConversion {
  const notConverted: string[] = [];
  const notes: string[] = [];
  let requestMs: number | null = null;
  if (route.timeout !== undefined) {
    const ms = parseIstioDurationMs(route.timeout);
    if (ms === null) notConverted.push(`${at}.timeout: ${JSON.stringify(route.timeout)} is not a duration`);
    else requestMs = ms;
  }
  let retry: RetryConversion['retry'] = null;
  let perTryMs: number | null = null;
  const r = route.retries;
  if (r === undefined) {
    // Istio's implicit default policy; reported once per VirtualService by the caller.
  } else if (!isObj(r)) {
    notConverted.push(`${at}.retries: must be an object`);
  } else {
    const attempts = r.attempts ?? 2;
    if (!Number.isInteger(attempts) || (attempts as number) < 0) {
      notConverted.push(`${at}.retries.attempts: ${JSON.stringify(attempts)} is not a count`);
    } else if (attempts === 0) {
      // attempts 0 disables retries: no retry stanza.
    } else {
      let n = attempts as number;
      if (n > 100) {
        notes.push(`${at}.retries.attempts: ${n} is more than an HTTPRoute allows; 100 is used`);
        n = 100;
      }
      const retryOn = typeof r.retryOn === 'string' ? r.retryOn : ISTIO_DEFAULT_RETRY_ON;
      const mapped = mapRetryOn(retryOn, `${at}.retries.retryOn`);
      notConverted.push(...mapped.notConverted);
      notes.push(...mapped.notes);
      retry = { attempts: n, codes: mapped.codes };
    }
    if (r.perTryTimeout !== undefined) {
      const ms = parseIstioDurationMs(r.perTryTimeout);
      if (ms === null)
        notConverted.push(`${at}.retries.perTryTimeout: ${JSON.stringify(r.perTryTimeout)} is not a duration`);
      else if (ms > 0) perTryMs = ms;
    }
    for (const key of ['retryRemoteLocalities', 'retryIgnorePreviousHosts', 'backoff']) {
      if (r[key] !== undefined) notConverted.push(`${at}.retries.${key}: no HTTPRoute equivalent`);
    }
  }
  if (perTryMs !== null && requestMs !== null && requestMs > 0 && perTryMs > requestMs) {
    notes.push(
      `${at}.retries.perTryTimeout is longer than timeout: the per-try timeout is capped to the request timeout`,
    );
    perTryMs = requestMs;
  }
  const timeouts: { request?: string; backendRequest?: string } = {};
  if (requestMs !== null) {
    if (requestMs > 0 && requestMs < 1) notes.push(`${at}.timeout: rounded up to 1ms`);
    timeouts.request = formatGatewayDuration(requestMs);
  }
  if (perTryMs !== null) timeouts.backendRequest = formatGatewayDuration(perTryMs);
  return {
    retry,
    timeouts: Object.keys(timeouts).length === 0 ? null : timeouts,
    notConverted,
    notes,
    implicitDefault: r === undefined,
  };
}

/** Envoy retry conditions → status codes; numeric entries are Istio's retriable status codes. */
export function mapRetryOn(retryOn: string, at: string): { codes: number[]; notConverted: string[]; notes: string[] } {
  const codes = new Set<number>();
  const notConverted: string[] = [];
  const notes: string[] = [];
  const conditions = retryOn
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const c of conditions) {
    if (/^[0-9]{3}$/.test(c)) {
      const n = Number(c);
      if (n >= 400 && n <= 599) codes.add(n);
      else notConverted.push(`${at}: status ${c}: an HTTPRoute retries only on 400–599`);
    } else if (CONDITION_CODES[c] !== undefined) {
      for (const n of CONDITION_CODES[c]) codes.add(n);
      if (c === '5xx') notes.push(`${at}: 5xx is converted to the registered 5xx statuses (${ALL_5XX.join(', ')})`);
    } else if (CONNECTION_CONDITIONS.has(c)) {
      // Retried anyway: Ferry's waypoint retries connection failures under any retry stanza.
    } else if (c === 'retriable-status-codes') {
      // Only names the numeric entries of the same list (handled above).
    } else {
      notConverted.push(`${at}: ${c}: ${conditionReason(c)}`);
    }
  }
  if (!conditions.some((c) => CONNECTION_CONDITIONS.has(c) || c === '5xx' || c === 'gateway-error')) {
    notes.push(`${at}: the waypoint also retries connection failures, which ${JSON.stringify(retryOn)} did not`);
  }
  return { codes: [...codes].sort((a, b) => a - b), notConverted, notes };
}

function conditionReason(c: string): string {
  if (['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'].includes(c)) {
    return 'a gRPC status (in trailers); an HTTPRoute retries on HTTP statuses only';
  }
  if (c === 'envoy-ratelimited' || c === 'retriable-headers' || c === 'http3-post-connect-failure') {
    return 'Envoy-specific condition with no HTTPRoute equivalent';
  }
  return 'unknown retry condition';
}
