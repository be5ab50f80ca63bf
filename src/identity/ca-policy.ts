// The CA's issuing policy as a pure function: given a validated CSR, the caller's ImpersonatedIdentity
// metadata and requested validity, decide which identity and which validity window to sign, or why not.
// No clock, no keys, no I/O: `nowMs` is passed in (STYLE.md §2). Who may ask (node binding) is the
// authorizer's job in ca-server.ts; this only checks what the request itself must satisfy.
import type { ParsedCsr } from './csr.ts';
import { fail, ok, type Result } from './errors.ts';
import { formatSpiffeId, parseSpiffeId, type SpiffeId, sameSpiffeId } from './spiffe-id.ts';

const HOUR_MS = 3600_000;
/** Istio's default workload certificate TTL (docs/architecture.md "Identity"). */
export const DEFAULT_SVID_TTL_MS = 24 * HOUR_MS;
/** Longest validity we issue. Istio's default max (MAX_WORKLOAD_CERT_TTL) is 90 days; longer asks are clamped. */
export const MAX_SVID_TTL_MS = 90 * 24 * HOUR_MS;
/** notBefore is backdated so that peers whose clocks run a little behind accept a fresh certificate. */
export const CLOCK_SKEW_BACKDATE_MS = 60_000;

export interface IssuePolicy {
  readonly trustDomain: string;
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
}

export interface IssueRequest {
  readonly csr: ParsedCsr;
  /** Raw `ImpersonatedIdentity` metadata value, if the caller sent one (untrusted text). */
  readonly impersonatedIdentity: string | undefined;
  /** Requested validity in seconds; 0, negative or non-finite means "the default". */
  readonly requestedTtlSeconds: number;
}

export interface IssuePlan {
  readonly identity: SpiffeId;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Decides what to sign. Expected refusals are values, never throws. */
export function planIssue(req: IssueRequest, policy: IssuePolicy, nowMs: number): Result<IssuePlan> {
  const identity = req.csr.identity;
  if (req.impersonatedIdentity !== undefined) {
    const asked = parseSpiffeId(req.impersonatedIdentity);
    if (!asked.ok) {
      return fail('FERRY_CA_IDENTITY_MISMATCH', `ImpersonatedIdentity is not a SPIFFE ID: ${asked.error}`);
    }
    // Istio: the CSR's SAN must be the identity the ztunnel asks for on the pod's behalf.
    if (!sameSpiffeId(asked.value, identity)) {
      return fail(
        'FERRY_CA_IDENTITY_MISMATCH',
        `ImpersonatedIdentity ${formatSpiffeId(asked.value)} differs from the CSR SAN ${formatSpiffeId(identity)}`,
      );
    }
  }
  if (identity.trustDomain !== policy.trustDomain) {
    return fail(
      'FERRY_CA_WRONG_TRUST_DOMAIN',
      `${formatSpiffeId(identity)} is in trust domain ${JSON.stringify(identity.trustDomain)}; ` +
        `this CA serves ${JSON.stringify(policy.trustDomain)}`,
    );
  }
  const ttlMs = effectiveTtlMs(req.requestedTtlSeconds, policy);
  return ok({ identity, notBefore: new Date(nowMs - CLOCK_SKEW_BACKDATE_MS), notAfter: new Date(nowMs + ttlMs) });
}

/** The requested validity is honoured up to the maximum (clamped, not refused: a renewal must not fail on it). */
export function effectiveTtlMs(requestedTtlSeconds: number, policy: IssuePolicy): number {
  if (!Number.isFinite(requestedTtlSeconds) || requestedTtlSeconds <= 0) return policy.defaultTtlMs;
  return Math.min(requestedTtlSeconds * 1000, policy.maxTtlMs);
}
