// Candidate index over the policies that apply to one destination (docs/performance.md, "Policy scale").
// MeshView.policiesFor already narrows by scope (Global, the destination's Namespace, its WorkloadSelector
// keys); this narrows inside that list by what the connection carries, so a decision over thousands of
// applicable policies matches only the few that could match. Each policy is filed under a *guard*: values
// one connection attribute must have for the policy to possibly match (an exact principal, a service
// account, an exact source namespace, a destination port), derived from its rules by Istio's semantics
// (match.ts). A policy whose rules give no guard is a candidate for every connection. Soundness: a policy
// that matches a connection is always among its candidates, so evaluating candidates only gives exactly
// the verdict of evaluating the whole list (property-tested against evaluateAuthzLinear). Pure.
import type { Authorization, Clause, Match, Rule } from '../types.ts';
import { isEmptyMatch, type Subject } from './match.ts';

/** Connection attributes a guard can name; the order is the preference when several apply (most selective first). */
const DIMENSIONS = ['principal', 'serviceAccount', 'namespace', 'port'] as const;
type Dimension = (typeof DIMENSIONS)[number];

interface Guard {
  readonly dimension: Dimension;
  readonly values: readonly string[];
}

/** `null`: no guard (may match anything); `'never'`: cannot match any connection. */
type RuleGuard = Guard | null | 'never';

export interface PolicyIndex {
  /** The indexed list, in input order (positions below refer to it). */
  readonly policies: readonly Authorization[];
  /** Whether an enforced ALLOW exists: "no ALLOW policy applies → allow" holds even when none is a candidate. */
  readonly hasAllow: boolean;
  /** Positions of the dry-run policies: each is reported, matched or not. */
  readonly dryRun: readonly number[];
  /** Positions of the policies with no guard, ascending. */
  readonly unguarded: readonly number[];
  /** `<dimension>\0<value>` → positions, ascending. */
  readonly guarded: ReadonlyMap<string, readonly number[]>;
}

const bucketKey = (dimension: Dimension, value: string): string => `${dimension}\u0000${value}`;

/** The values `m` requires of `dimension` (one must be present), or null when `m` does not constrain it so. */
function matchGuard(m: Match, dimension: Dimension): readonly string[] | null {
  switch (dimension) {
    case 'principal':
      // Only exact principals name a value; prefix/suffix/presence do not.
      return m.principals.length > 0 && m.principals.every((p) => p.kind === 'exact')
        ? m.principals.map((p) => (p.kind === 'exact' ? p.value : ''))
        : null;
    case 'serviceAccount':
      return m.serviceAccounts.length > 0
        ? m.serviceAccounts.map((sa) => serviceAccountKey(sa.namespace, sa.serviceAccount))
        : null;
    case 'namespace':
      return m.namespaces.length > 0 && m.namespaces.every((n) => n.kind === 'exact')
        ? m.namespaces.map((n) => (n.kind === 'exact' ? n.value : ''))
        : null;
    case 'port':
      return m.destinationPorts.length > 0 ? m.destinationPorts.map(String) : null;
  }
}

function serviceAccountKey(namespace: string, serviceAccount: string): string {
  return `${namespace}\u0000${serviceAccount}`;
}

/** A clause matches when one of its non-empty matches does: a guard every one of them shares. */
function clauseGuard(clause: Clause): RuleGuard {
  const live = clause.filter((m) => !isEmptyMatch(m)); // empty matches never match (match.ts)
  if (live.length === 0) return 'never';
  for (const dimension of DIMENSIONS) {
    const values = new Set<string>();
    let all = true;
    for (const m of live) {
      const v = matchGuard(m, dimension);
      if (v === null) {
        all = false;
        break;
      }
      for (const x of v) values.add(x);
    }
    if (all) return { dimension, values: [...values] };
  }
  return null;
}

/** A rule matches when all its clauses do: any one clause's guard guards the rule; take the best. */
function ruleGuard(rule: Rule): RuleGuard {
  let best: Guard | null = null;
  for (const clause of rule) {
    if (clause.length === 0) continue; // an empty clause imposes nothing
    const g = clauseGuard(clause);
    if (g === 'never') return 'never';
    if (g !== null && (best === null || better(g, best))) best = g;
  }
  return best;
}

function better(a: Guard, b: Guard): boolean {
  const ra = DIMENSIONS.indexOf(a.dimension);
  const rb = DIMENSIONS.indexOf(b.dimension);
  return ra !== rb ? ra < rb : a.values.length < b.values.length;
}

/** Buckets of one policy: null = unguarded; [] = never matches (a policy matches when one rule does). */
function policyBuckets(policy: Authorization): string[] | null {
  const keys = new Set<string>();
  for (const rule of policy.rules) {
    const g = ruleGuard(rule);
    if (g === 'never') continue;
    if (g === null) return null;
    for (const v of g.values) keys.add(bucketKey(g.dimension, v));
  }
  return [...keys];
}

export function buildPolicyIndex(policies: readonly Authorization[]): PolicyIndex {
  const unguarded: number[] = [];
  const guarded = new Map<string, number[]>();
  const dryRun: number[] = [];
  let hasAllow = false;
  policies.forEach((policy, i) => {
    if (policy.dryRun) dryRun.push(i);
    else if (policy.action === 'Allow') hasAllow = true;
    const keys = policyBuckets(policy);
    if (keys === null) unguarded.push(i);
    else {
      for (const k of keys) {
        const list = guarded.get(k);
        if (list === undefined) guarded.set(k, [i]);
        else list.push(i);
      }
    }
  });
  return { policies, hasAllow, dryRun, unguarded, guarded };
}

/**
 * Positions (ascending, no duplicates) of the policies that may match the connection behind `subject`;
 * every other policy of the index certainly does not match it.
 */
export function candidatePositions(index: PolicyIndex, subject: Subject): number[] {
  const id = subject.conn.srcIdentity;
  const lists: (readonly number[] | undefined)[] = [
    index.unguarded,
    index.guarded.get(bucketKey('namespace', subject.namespace)),
    index.guarded.get(bucketKey('port', String(subject.conn.dstPort))),
  ];
  if (subject.principal !== null) lists.push(index.guarded.get(bucketKey('principal', subject.principal)));
  if (id !== null) {
    lists.push(index.guarded.get(bucketKey('serviceAccount', serviceAccountKey(id.namespace, id.serviceAccount))));
  }
  const out: number[] = [];
  for (const list of lists) if (list !== undefined) for (const i of list) out.push(i);
  out.sort((a, b) => a - b);
  let n = 0;
  for (const i of out) if (n === 0 || out[n - 1] !== i) out[n++] = i;
  out.length = n;
  return out;
}
