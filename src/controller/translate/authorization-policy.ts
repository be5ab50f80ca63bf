// AuthorizationPolicy (security.istio.io) → istio.security.Authorization for ztunnel, by Istio ambient's
// conversion rules (docs/architecture.md "Policy and enrollment"):
// - targetRefs policies bind to waypoints: never sent to ztunnel. Only ALLOW and DENY exist at L4.
// - scope: selector → WorkloadSelector; none → Namespace, or Global in the root namespace.
// - one rule → AND of clauses: the `from` list is one clause (OR of its sources), the `to` list another,
//   each `when` condition its own clause. L4 fields: principals, namespaces, serviceAccounts, ipBlocks,
//   ports, when keys source.ip|source.namespace|source.principal|destination.ip|destination.port.
// - L7 content (requestPrincipals, remoteIpBlocks, hosts, methods, paths, other when keys): an ALLOW rule
//   with any is dropped whole (never matches: stricter); a DENY rule keeps only its L4 part (broader).
// Invalid values (CIDR, port) reject the whole policy, as Istio's admission would. Pure.

import { EMPTY_MATCH, stringMatch } from '../../mesh/authz/match.ts';
import { parseCidr } from '../../mesh/ip-addr.ts';
import type { Authorization, Cidr, Clause, Match, PolicyScope, Rule, ServiceAccountMatch } from '../../mesh/types.ts';
import type {
  AuthorizationPolicyObject,
  AuthzOperationSpec,
  AuthzRuleSpec,
  AuthzSourceSpec,
} from '../sources/types.ts';
import type { Diagnostics, TranslateSettings } from './types.ts';

/** Annotation Istio uses to mark a policy dry-run (evaluated and logged, never enforced). */
export const DRY_RUN_ANNOTATION = 'istio.io/dry-run';
const L4_WHEN_KEYS = new Set([
  'source.ip',
  'source.namespace',
  'source.principal',
  'destination.ip',
  'destination.port',
]);
const L7_SOURCE_FIELDS = ['requestPrincipals', 'notRequestPrincipals', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const;
const L7_OPERATION_FIELDS = ['hosts', 'notHosts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** Thrown inside one policy's conversion only, caught below: a bad value rejects that policy. */
class InvalidValue extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

function cidrs(values: readonly string[], field: string): Cidr[] {
  return values.map((v, i) => {
    const c = parseCidr(v);
    if (c === null) throw new InvalidValue(`${field}[${i}]`, `not an IP address or CIDR: ${JSON.stringify(v)}`);
    return c;
  });
}

function ports(values: readonly string[], field: string): number[] {
  return values.map((v, i) => {
    const n = /^[0-9]{1,5}$/.test(v) ? Number(v) : Number.NaN;
    if (!(n >= 1 && n <= 65535)) throw new InvalidValue(`${field}[${i}]`, `not a port 1–65535: ${JSON.stringify(v)}`);
    return n;
  });
}

function serviceAccounts(values: readonly string[], policyNs: string, field: string): ServiceAccountMatch[] {
  return values.map((v, i) => {
    const parts = v.split('/');
    const [a, b] = parts;
    if (parts.length > 2 || a === undefined || a === '' || b === '') {
      throw new InvalidValue(`${field}[${i}]`, `expected "name" or "namespace/name": ${JSON.stringify(v)}`);
    }
    // A bare name means a service account of the policy's own namespace.
    return b === undefined ? { namespace: policyNs, serviceAccount: a } : { namespace: a, serviceAccount: b };
  });
}

function isEmptyMatch(m: Match): boolean {
  return Object.values(m).every((list: readonly unknown[]) => list.length === 0);
}

function sourceMatch(s: AuthzSourceSpec, policyNs: string, field: string): Match {
  return {
    ...EMPTY_MATCH,
    principals: s.principals.map(stringMatch),
    notPrincipals: s.notPrincipals.map(stringMatch),
    namespaces: s.namespaces.map(stringMatch),
    notNamespaces: s.notNamespaces.map(stringMatch),
    serviceAccounts: serviceAccounts(s.serviceAccounts, policyNs, `${field}.serviceAccounts`),
    notServiceAccounts: serviceAccounts(s.notServiceAccounts, policyNs, `${field}.notServiceAccounts`),
    sourceIps: cidrs(s.ipBlocks, `${field}.ipBlocks`),
    notSourceIps: cidrs(s.notIpBlocks, `${field}.notIpBlocks`),
  };
}

function operationMatch(o: AuthzOperationSpec, field: string): Match {
  return {
    ...EMPTY_MATCH,
    destinationPorts: ports(o.ports, `${field}.ports`),
    notDestinationPorts: ports(o.notPorts, `${field}.notPorts`),
  };
}

function whenMatch(key: string, values: readonly string[], notValues: readonly string[], field: string): Match {
  switch (key) {
    case 'source.ip':
      return {
        ...EMPTY_MATCH,
        sourceIps: cidrs(values, `${field}.values`),
        notSourceIps: cidrs(notValues, `${field}.notValues`),
      };
    case 'source.namespace':
      return { ...EMPTY_MATCH, namespaces: values.map(stringMatch), notNamespaces: notValues.map(stringMatch) };
    case 'source.principal':
      return { ...EMPTY_MATCH, principals: values.map(stringMatch), notPrincipals: notValues.map(stringMatch) };
    case 'destination.ip':
      return {
        ...EMPTY_MATCH,
        destinationIps: cidrs(values, `${field}.values`),
        notDestinationIps: cidrs(notValues, `${field}.notValues`),
      };
    default: // destination.port (callers pass L4 keys only)
      return {
        ...EMPTY_MATCH,
        destinationPorts: ports(values, `${field}.values`),
        notDestinationPorts: ports(notValues, `${field}.notValues`),
      };
  }
}

interface ConvertedRule {
  /** The L4 clauses; a list whose L4 part matches anything is left out (it no longer constrains). */
  readonly clauses: Clause[];
  /** Fields holding L7 content, for the diagnostic. */
  readonly l7: string[];
}

function convertRule(rule: AuthzRuleSpec, policyNs: string, field: string): ConvertedRule {
  const clauses: Clause[] = [];
  const l7: string[] = [];
  const listClause = (matches: Match[]) => {
    // A source/operation with only L7 fields is, at L4, "anything": the whole OR-list then matches anything.
    if (matches.length > 0 && !matches.some(isEmptyMatch)) clauses.push(matches);
  };
  listClause(
    rule.from.map((s, i) => {
      const at = `${field}.from[${i}].source`;
      for (const k of L7_SOURCE_FIELDS) if (s[k].length > 0) l7.push(`${at}.${k}`);
      return sourceMatch(s, policyNs, at);
    }),
  );
  listClause(
    rule.to.map((o, i) => {
      const at = `${field}.to[${i}].operation`;
      for (const k of L7_OPERATION_FIELDS) if (o[k].length > 0) l7.push(`${at}.${k}`);
      return operationMatch(o, at);
    }),
  );
  rule.when.forEach((c, i) => {
    const at = `${field}.when[${i}]`;
    if (c.values.length === 0 && c.notValues.length === 0)
      throw new InvalidValue(at, 'a condition needs values or notValues');
    if (!L4_WHEN_KEYS.has(c.key)) l7.push(`${at} (key ${c.key})`);
    else clauses.push([whenMatch(c.key, c.values, c.notValues, at)]);
  });
  return { clauses, l7 };
}

/** The ztunnel form of one AuthorizationPolicy, or null when ztunnel does not enforce it (see header). */
export function convertAuthorizationPolicy(
  ap: AuthorizationPolicyObject,
  settings: TranslateSettings,
  diags: Diagnostics,
): Authorization | null {
  const { spec, metadata } = ap;
  if (spec.hasTargetRefs) return null; // waypoint policy (gateway-api-anchor.md): L7 attaches there
  if (spec.action !== 'ALLOW' && spec.action !== 'DENY') {
    diags.warn(
      ap,
      'FERRY_TRANSLATE_UNSUPPORTED',
      'spec.action',
      `ztunnel does not support the ${spec.action} action; policy not enforced`,
    );
    return null;
  }
  const action = spec.action === 'ALLOW' ? 'Allow' : 'Deny';
  const scope: PolicyScope =
    spec.selector !== null
      ? 'WorkloadSelector'
      : metadata.namespace === settings.rootNamespace
        ? 'Global'
        : 'Namespace';
  const rules: Rule[] = [];
  try {
    spec.rules.forEach((rule, i) => {
      const field = `spec.rules[${i}]`;
      const converted = convertRule(rule, metadata.namespace, field);
      for (const [j, s] of rule.from.entries()) {
        if (
          s.principals.some((p) => p.startsWith('spiffe://')) ||
          s.notPrincipals.some((p) => p.startsWith('spiffe://'))
        ) {
          diags.warn(
            ap,
            'FERRY_TRANSLATE_UNSUPPORTED',
            `${field}.from[${j}].source.principals`,
            'principals are written without "spiffe://" (e.g. cluster.local/ns/x/sa/y); this value never matches',
          );
        }
      }
      if (converted.l7.length === 0) {
        rules.push(converted.clauses);
      } else if (action === 'Allow') {
        diags.warn(
          ap,
          'FERRY_TRANSLATE_UNSUPPORTED',
          field,
          `HTTP attributes (${converted.l7.join(', ')}) need a waypoint; ztunnel drops this ALLOW rule, so it matches nothing`,
        );
      } else {
        diags.warn(
          ap,
          'FERRY_TRANSLATE_UNSUPPORTED',
          field,
          `HTTP attributes (${converted.l7.join(', ')}) need a waypoint; ztunnel enforces only the rest of this DENY rule, which denies more`,
        );
        rules.push(converted.clauses);
      }
    });
  } catch (err) {
    if (!(err instanceof InvalidValue)) throw err;
    diags.error(ap, 'FERRY_MANIFEST_INVALID_FIELD', err.field, `${err.message}; policy not applied`);
    return null;
  }
  const dryRun = metadata.annotations.get(DRY_RUN_ANNOTATION) === 'true';
  return { name: metadata.name, namespace: metadata.namespace, scope, action, dryRun, rules };
}
