// L4 authorization decision for one connection over the policies that apply to its destination, in Istio's
// order (docs/architecture.md "Policy and enrollment"; istio/ztunnel src/state.rs assert_rbac, docs/architecture.md "Policy and enrollment"). Pure: the
// caller selects the applicable policies (namespace, global, workload selector) and logs the verdict.
// Long lists are evaluated through a candidate index (policy-index.ts, docs/performance.md "Policy scale"):
// same verdict as the linear walk, built once per list and memoized for frozen lists (MeshView.policiesFor
// returns one frozen list per destination and view), so a connection matches only the policies that could
// match it.

import type { Authorization } from '../types.ts';
import { policyKey } from '../types.ts';
import { matchesSubject, type Subject, subjectOf } from './match.ts';
import { buildPolicyIndex, candidatePositions, type PolicyIndex } from './policy-index.ts';
import type { AuthzConnection, AuthzVerdict, DryRunFinding } from './types.ts';

/** Below this many policies a linear walk is as fast as building and consulting an index. */
export const INDEX_MIN_POLICIES = 16;

// Keyed by the (frozen, hence unchanging) list; dropped with it when its MeshView goes.
const indexes = new WeakMap<readonly Authorization[], PolicyIndex>();

/**
 * Decides allow/deny. Dry-run policies never change the verdict; each is reported in `dryRun` (input order)
 * with whether it matched. Among several matching DENY policies the first in input order is named.
 */
export function evaluateAuthz(policies: readonly Authorization[], conn: AuthzConnection): AuthzVerdict {
  if (policies.length < INDEX_MIN_POLICIES || !Object.isFrozen(policies)) return evaluateAuthzLinear(policies, conn);
  let index = indexes.get(policies);
  if (index === undefined) {
    index = buildPolicyIndex(policies);
    indexes.set(policies, index);
  }
  return evaluateAuthzIndexed(index, conn);
}

/** The reference evaluation: every policy, in input order. */
export function evaluateAuthzLinear(policies: readonly Authorization[], conn: AuthzConnection): AuthzVerdict {
  const subject = subjectOf(conn);
  const dryRun: DryRunFinding[] = [];
  let hasAllow = false;
  let allowed = false;
  let denied: Authorization | null = null;
  for (const policy of policies) {
    if (policy.dryRun) {
      dryRun.push(finding(policy, matchesSubject(policy, subject)));
    } else if (policy.action === 'Allow') {
      hasAllow = true;
      // Matched lazily below: only needed when no DENY matched.
    } else if (denied === null && matchesSubject(policy, subject)) {
      denied = policy;
    }
  }
  if (denied === null && hasAllow) {
    allowed = policies.some((p) => !p.dryRun && p.action === 'Allow' && matchesSubject(p, subject));
  }
  return verdict(denied, hasAllow, allowed, dryRun);
}

/** The same decision over an index: only candidate policies are matched. */
export function evaluateAuthzIndexed(index: PolicyIndex, conn: AuthzConnection): AuthzVerdict {
  const subject = subjectOf(conn);
  const candidates = candidatePositions(index, subject);
  const dryRun = index.dryRun.length === 0 ? [] : dryRunFindings(index, candidates, subject);
  let denied: Authorization | null = null;
  for (const i of candidates) {
    const p = index.policies[i] as Authorization;
    if (!p.dryRun && p.action === 'Deny' && matchesSubject(p, subject)) {
      denied = p;
      break;
    }
  }
  let allowed = false;
  if (denied === null && index.hasAllow) {
    allowed = candidates.some((i) => {
      const p = index.policies[i] as Authorization;
      return !p.dryRun && p.action === 'Allow' && matchesSubject(p, subject);
    });
  }
  return verdict(denied, index.hasAllow, allowed, dryRun);
}

/** Every dry-run policy in input order; one that is not a candidate certainly did not match. */
function dryRunFindings(index: PolicyIndex, candidates: readonly number[], subject: Subject): DryRunFinding[] {
  const out: DryRunFinding[] = [];
  let c = 0;
  for (const i of index.dryRun) {
    while (c < candidates.length && (candidates[c] as number) < i) c++;
    const policy = index.policies[i] as Authorization;
    out.push(finding(policy, candidates[c] === i && matchesSubject(policy, subject)));
  }
  return out;
}

function finding(policy: Authorization, matched: boolean): DryRunFinding {
  return { policy: policyKey(policy.namespace, policy.name), action: policy.action, matched };
}

function verdict(
  denied: Authorization | null,
  hasAllow: boolean,
  allowed: boolean,
  dryRun: DryRunFinding[],
): AuthzVerdict {
  // "If there are any DENY policies that match the request, deny the request."
  if (denied !== null) {
    return { kind: 'deny', code: 'FERRY_AUTHZ_DENIED', policy: policyKey(denied.namespace, denied.name), dryRun };
  }
  // "If there are no ALLOW policies for the workload, allow the request."
  if (!hasAllow) return { kind: 'allow', dryRun };
  // "If any of the ALLOW policies match the request, allow the request." Otherwise: "Deny the request."
  return allowed ? { kind: 'allow', dryRun } : { kind: 'deny', code: 'FERRY_AUTHZ_NOT_ALLOWED', dryRun };
}
