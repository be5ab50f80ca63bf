// Passive outlier detection for client-side load balancing (docs/operations.md, "Outlier detection"), after
// Envoy's (consecutive failures → ejection for base × times ejected, capped; at most a share of the
// endpoints ejected; panic: when every candidate is ejected, all are used). An endpoint is a next hop
// (`ip:port`): the destination's HBONE port, or the plain TCP target. What counts as a failure is the
// caller's (a connect that failed: refused, timed out, TLS, a 502/503/504 to CONNECT), never a policy denial.
// Differences from Envoy, chosen for a dead node: 3 consecutive failures eject (Envoy: 5 for
// consecutive_5xx/local-origin failures), and an endpoint back from an ejection is on probation: its first
// failure ejects it again at once (with a longer time), so a node that stays down costs one failed
// connection per ejection period instead of three. A success clears its history. Pure: time is passed in.

export interface OutlierSettings {
  /** Consecutive failures that eject an endpoint. */
  readonly consecutiveFailures: number;
  /** Ejection time for the first ejection; the n-th lasts n × this, capped at `maxEjectionMs`. */
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** At most this share of one choice's candidates is left out, and always at least one. */
  readonly maxEjectionPercent: number;
}

export const DEFAULT_OUTLIER_SETTINGS: OutlierSettings = {
  consecutiveFailures: 3,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 50,
};

/** Endpoints tracked at most (only failing ones are tracked: a success forgets the endpoint). */
const MAX_TRACKED = 10_000;

interface EndpointRecord {
  consecutive: number;
  /** Ejections since the last success (the multiplier of the ejection time). */
  ejections: number;
  ejectedAtMs: number;
  /** Ejected until then (exclusive); 0 when never ejected. */
  ejectedUntilMs: number;
}

export type FailureVerdict =
  | { readonly kind: 'counted'; readonly consecutive: number }
  | { readonly kind: 'ejected'; readonly untilMs: number; readonly ejections: number }
  /** Already ejected: connections that were in flight when it was ejected do not extend it. */
  | { readonly kind: 'already-ejected' };

export interface OutlierEntry {
  readonly endpoint: string;
  readonly consecutiveFailures: number;
  readonly ejections: number;
  readonly ejectedUntilMs: number | null;
}

export class OutlierDetector {
  readonly settings: OutlierSettings;
  readonly #endpoints = new Map<string, EndpointRecord>();

  constructor(settings: OutlierSettings = DEFAULT_OUTLIER_SETTINGS) {
    this.settings = settings;
  }

  /** A connect to `endpoint` failed at `nowMs`. */
  recordFailure(endpoint: string, nowMs: number): FailureVerdict {
    let r = this.#endpoints.get(endpoint);
    if (r === undefined) {
      if (this.#endpoints.size >= MAX_TRACKED) {
        const oldest = this.#endpoints.keys().next().value;
        if (oldest !== undefined) this.#endpoints.delete(oldest);
      }
      r = { consecutive: 0, ejections: 0, ejectedAtMs: 0, ejectedUntilMs: 0 };
      this.#endpoints.set(endpoint, r);
    }
    if (nowMs < r.ejectedUntilMs) return { kind: 'already-ejected' };
    r.consecutive += 1;
    const onProbation = r.ejections > 0; // back from an ejection without a success since
    if (!onProbation && r.consecutive < this.settings.consecutiveFailures) {
      return { kind: 'counted', consecutive: r.consecutive };
    }
    r.ejections += 1;
    r.consecutive = 0;
    r.ejectedAtMs = nowMs;
    r.ejectedUntilMs = nowMs + Math.min(this.settings.baseEjectionMs * r.ejections, this.settings.maxEjectionMs);
    return { kind: 'ejected', untilMs: r.ejectedUntilMs, ejections: r.ejections };
  }

  /** A connect to `endpoint` succeeded: its failures and ejections are forgotten. */
  recordSuccess(endpoint: string): void {
    this.#endpoints.delete(endpoint);
  }

  isEjected(endpoint: string, nowMs: number): boolean {
    const r = this.#endpoints.get(endpoint);
    return r !== undefined && nowMs < r.ejectedUntilMs;
  }

  /**
   * The candidates of one choice without the ejected ones, leaving out at most `maxEjectionPercent` of them
   * (at least one; the earliest ejected first), and all of them when every one is ejected (panic).
   */
  admit<T>(candidates: readonly T[], keyOf: (c: T) => string, nowMs: number): readonly T[] {
    if (this.#endpoints.size === 0 || candidates.length < 2) return candidates;
    const ejected: { c: T; at: number }[] = [];
    for (const c of candidates) {
      const r = this.#endpoints.get(keyOf(c));
      if (r !== undefined && nowMs < r.ejectedUntilMs) ejected.push({ c, at: r.ejectedAtMs });
    }
    if (ejected.length === 0 || ejected.length === candidates.length) return candidates;
    const allowed = Math.max(1, Math.floor((candidates.length * this.settings.maxEjectionPercent) / 100));
    const out = new Set(
      ejected
        .sort((a, b) => a.at - b.at)
        .slice(0, allowed)
        .map((e) => e.c),
    );
    return candidates.filter((c) => !out.has(c));
  }

  /** What is tracked now (for the admin config dump). */
  entries(nowMs: number): OutlierEntry[] {
    return [...this.#endpoints].map(([endpoint, r]) => ({
      endpoint,
      consecutiveFailures: r.consecutive,
      ejections: r.ejections,
      ejectedUntilMs: nowMs < r.ejectedUntilMs ? r.ejectedUntilMs : null,
    }));
  }
}
