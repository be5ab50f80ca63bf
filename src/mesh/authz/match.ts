// Does one Authorization policy match one connection? Exactly Istio ztunnel's semantics (docs/architecture.md "Policy and enrollment",
// docs/architecture.md "Policy and enrollment"): policy = OR of rules, rule = AND of clauses, clause = OR of matches,
// match = AND of its non-empty fields, values within a field OR, not_* fields must match none of their values.
// Pure: no I/O, clock or logger; the only inputs are the policy and the connection.
import { principalOf } from '../../identity/spiffe-id.ts';
import { ipInCidr } from '../ip-addr.ts';
import type { Authorization, Clause, Match, Rule, ServiceAccountMatch, StringMatch } from '../types.ts';
import type { AuthzConnection } from './types.ts';

/** What a Match compares against, derived once per connection (subjectOf). */
export interface Subject {
  readonly conn: AuthzConnection;
  /** `td/ns/x/sa/y` (spiffe:// stripped), or null for plaintext. */
  readonly principal: string | null;
  /** Namespace from the peer certificate; "" for plaintext. */
  readonly namespace: string;
}

/** A Match with every field empty; spread it and set the fields you need. */
export const EMPTY_MATCH: Match = Object.freeze({
  namespaces: [],
  notNamespaces: [],
  serviceAccounts: [],
  notServiceAccounts: [],
  principals: [],
  notPrincipals: [],
  sourceIps: [],
  notSourceIps: [],
  destinationIps: [],
  notDestinationIps: [],
  destinationPorts: [],
  notDestinationPorts: [],
});

export function matchesStringMatch(m: StringMatch, value: string): boolean {
  switch (m.kind) {
    case 'exact':
      return value === m.value;
    case 'prefix':
      return value.startsWith(m.value);
    case 'suffix':
      return value.endsWith(m.value);
    case 'presence':
      return value.length > 0;
    default:
      return assertNever(m);
  }
}

/** True when every field is empty: such a Match is skipped, i.e. never matches (ztunnel rbac.rs). */
export function isEmptyMatch(m: Match): boolean {
  return (
    m.namespaces.length === 0 &&
    m.notNamespaces.length === 0 &&
    m.serviceAccounts.length === 0 &&
    m.notServiceAccounts.length === 0 &&
    m.principals.length === 0 &&
    m.notPrincipals.length === 0 &&
    m.sourceIps.length === 0 &&
    m.notSourceIps.length === 0 &&
    m.destinationIps.length === 0 &&
    m.notDestinationIps.length === 0 &&
    m.destinationPorts.length === 0 &&
    m.notDestinationPorts.length === 0
  );
}

/** A field pair: some positive value must match (if any are listed) and no negative value may match. */
function field<T>(positive: readonly T[], negative: readonly T[], test: (value: T) => boolean): boolean {
  if (positive.length > 0 && !positive.some(test)) return false;
  return negative.length === 0 || !negative.some(test);
}

function principalMatches(subject: Subject, m: StringMatch): boolean {
  // Without a peer identity no principal value matches at all (not even prefix ""), as in ztunnel, where the
  // empty principal fails the spiffe:// strip; so for plaintext only notPrincipals can be satisfied.
  return subject.principal !== null && matchesStringMatch(m, subject.principal);
}

function serviceAccountMatches(subject: Subject, m: ServiceAccountMatch): boolean {
  const id = subject.conn.srcIdentity;
  return id !== null && id.namespace === m.namespace && id.serviceAccount === m.serviceAccount;
}

function matchMatches(m: Match, subject: Subject): boolean {
  const { conn } = subject;
  return (
    field(m.destinationIps, m.notDestinationIps, (c) => ipInCidr(conn.dstIp, c)) &&
    field(m.sourceIps, m.notSourceIps, (c) => ipInCidr(conn.srcIp, c)) &&
    field(m.destinationPorts, m.notDestinationPorts, (p) => p === conn.dstPort) &&
    field(m.serviceAccounts, m.notServiceAccounts, (sa) => serviceAccountMatches(subject, sa)) &&
    field(m.principals, m.notPrincipals, (p) => principalMatches(subject, p)) &&
    field(m.namespaces, m.notNamespaces, (n) => matchesStringMatch(n, subject.namespace))
  );
}

function clauseMatches(clause: Clause, subject: Subject): boolean {
  if (clause.length === 0) return true; // an empty clause imposes nothing
  return clause.some((m) => !isEmptyMatch(m) && matchMatches(m, subject));
}

function ruleMatches(rule: Rule, subject: Subject): boolean {
  return rule.every((clause) => clauseMatches(clause, subject)); // zero clauses: matches everything
}

/** The connection as policies see it; build it once per decision, not once per policy. */
export function subjectOf(conn: AuthzConnection): Subject {
  const id = conn.srcIdentity;
  return { conn, principal: id === null ? null : principalOf(id), namespace: id === null ? '' : id.namespace };
}

/** Whether `policy` matches the connection behind `subject` (ignores action and dryRun). */
export function matchesSubject(policy: Authorization, subject: Subject): boolean {
  return policy.rules.some((rule) => ruleMatches(rule, subject));
}

/** Whether `policy` matches `conn` (ignores action and dryRun). A policy with no rules never matches. */
export function matchesPolicy(policy: Authorization, conn: AuthzConnection): boolean {
  return matchesSubject(policy, subjectOf(conn));
}

function assertNever(value: never): never {
  throw new TypeError(`unexpected StringMatch ${JSON.stringify(value)}`);
}

/** Istio string forms: "*" presence, "*x" suffix, "x*" prefix, anything else exact. */
export function stringMatch(value: string): StringMatch {
  if (value === '*') return { kind: 'presence' };
  if (value.startsWith('*')) return { kind: 'suffix', value: value.slice(1) };
  if (value.endsWith('*')) return { kind: 'prefix', value: value.slice(0, -1) };
  return { kind: 'exact', value };
}
