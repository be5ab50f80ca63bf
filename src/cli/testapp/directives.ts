// Test-app request directives (pure): what the HTTP echo server should do with one request, from its query
// and headers. `?delay=200ms` (or `x-delay`), `?status=418`, and per-request-id failure injection for retry
// tests: `x-fail-times: N` fails the first N requests carrying the same `x-request-id` with
// `x-fail-status` (default 503) or, with `x-fail-reset`, with a TCP reset, or, with `x-fail-delay: 2s`,
// by answering normally but that late (a slow first try, for per-try timeouts).

export type EchoPlan =
  | { readonly kind: 'respond'; readonly status: number; readonly delayMs: number }
  | { readonly kind: 'fail-status'; readonly status: number; readonly delayMs: number; readonly attempt: number }
  | { readonly kind: 'fail-reset'; readonly delayMs: number; readonly attempt: number }
  | { readonly kind: 'fail-slow'; readonly status: number; readonly delayMs: number; readonly attempt: number }
  | { readonly kind: 'bad-request'; readonly reason: string };

export type HeaderValue = string | readonly string[] | undefined;

/** "200ms" | "1.5s" | "200" (ms) → milliseconds, or null. Capped at 60 s so a request cannot pin the server. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s)?$/.exec(text.trim());
  if (m === null) return null;
  const ms = Number(m[1]) * (m[2] === 's' ? 1000 : 1);
  return ms <= 60_000 ? Math.round(ms) : null;
}

function first(v: HeaderValue): string | undefined {
  return typeof v === 'string' ? v : v?.[0];
}

function parseStatus(text: string | undefined, fallback: number): number | null {
  if (text === undefined) return fallback;
  const n = Number(text);
  return Number.isInteger(n) && n >= 200 && n <= 599 ? n : null;
}

/**
 * Decides the response. `attempts(key)` returns how many earlier requests with this request id asked for
 * failures (the caller's ledger increments after the plan); pure otherwise.
 */
export function planEcho(
  query: URLSearchParams,
  headers: Readonly<Record<string, HeaderValue>>,
  priorAttempts: (requestId: string) => number,
): EchoPlan {
  const delayText = query.get('delay') ?? first(headers['x-delay']);
  const delayMs = delayText === undefined ? 0 : parseDuration(delayText);
  if (delayMs === null) return { kind: 'bad-request', reason: `bad delay ${JSON.stringify(delayText)}` };
  const status = parseStatus(query.get('status') ?? undefined, 200);
  if (status === null) return { kind: 'bad-request', reason: 'status must be 200..599' };

  const timesText = first(headers['x-fail-times']);
  const reset = first(headers['x-fail-reset']) !== undefined;
  const slowText = first(headers['x-fail-delay']);
  if (timesText === undefined && !reset && slowText === undefined) return { kind: 'respond', status, delayMs };
  const slowMs = slowText === undefined ? null : parseDuration(slowText);
  if (slowText !== undefined && slowMs === null) return { kind: 'bad-request', reason: 'bad x-fail-delay' };
  const times = timesText === undefined ? 1 : Number(timesText);
  if (!Number.isInteger(times) || times < 0 || times > 1000) {
    return { kind: 'bad-request', reason: 'x-fail-times must be an integer 0..1000' };
  }
  const failStatus = parseStatus(first(headers['x-fail-status']), 503);
  if (failStatus === null) return { kind: 'bad-request', reason: 'x-fail-status must be 200..599' };
  const attempt = priorAttempts(first(headers['x-request-id']) ?? '') + 1;
  if (attempt > times) return { kind: 'respond', status, delayMs };
  if (slowMs !== null) return { kind: 'fail-slow', status, delayMs: delayMs + slowMs, attempt };
  return reset
    ? { kind: 'fail-reset', delayMs, attempt }
    : { kind: 'fail-status', status: failStatus, delayMs, attempt };
}

/** Failure-injection attempts per request id, bounded so hostile clients cannot grow it without limit. */
export class FailureLedger {
  readonly #counts = new Map<string, number>();
  readonly #max: number;

  constructor(maxIds = 10_000) {
    this.#max = maxIds;
  }

  count(requestId: string): number {
    return this.#counts.get(requestId) ?? 0;
  }

  increment(requestId: string): void {
    const n = this.count(requestId) + 1;
    this.#counts.delete(requestId); // re-insert: Map order is then least-recently-failed first
    this.#counts.set(requestId, n);
    if (this.#counts.size > this.#max) {
      const oldest = this.#counts.keys().next();
      if (oldest.done !== true) this.#counts.delete(oldest.value);
    }
  }
}
