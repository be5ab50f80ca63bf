// L4 authorization decision for one connection over the policies that apply to its destination, in Istio's
// order (DESIGN.md §6; istio/ztunnel src/state.rs assert_rbac, reference/ztunnel-anchor.md §4.3). Pure: the
// caller selects the applicable policies (namespace, global, workload selector) and logs the verdict.

import type { Authorization } from '../store/types.ts';
import { policyKey } from '../store/types.ts';
import { matchesPolicy } from './match.ts';
import type { AuthzConnection, AuthzVerdict, DryRunFinding } from './types.ts';

/**
 * Decides allow/deny. Dry-run policies never change the verdict; each is reported in `dryRun` (input order)
 * with whether it matched. Among several matching DENY policies the first in input order is named.
 */
export function evaluateAuthz(policies: readonly Authorization[], conn: AuthzConnection): AuthzVerdict {
  const dryRun: DryRunFinding[] = [];
  const allows: Authorization[] = [];
  let denied: Authorization | null = null;
  for (const policy of policies) {
    if (policy.dryRun) {
      dryRun.push({
        policy: policyKey(policy.namespace, policy.name),
        action: policy.action,
        matched: matchesPolicy(policy, conn),
      });
    } else if (policy.action === 'Allow') {
      allows.push(policy);
    } else if (denied === null && matchesPolicy(policy, conn)) {
      denied = policy;
    }
  }
  // "If there are any DENY policies that match the request, deny the request."
  if (denied !== null) {
    return { kind: 'deny', code: 'FERRY_AUTHZ_DENIED', policy: policyKey(denied.namespace, denied.name), dryRun };
  }
  // "If there are no ALLOW policies for the workload, allow the request."
  if (allows.length === 0) return { kind: 'allow', dryRun };
  // "If any of the ALLOW policies match the request, allow the request."
  if (allows.some((policy) => matchesPolicy(policy, conn))) return { kind: 'allow', dryRun };
  // "Deny the request."
  return { kind: 'deny', code: 'FERRY_AUTHZ_NOT_ALLOWED', dryRun };
}
