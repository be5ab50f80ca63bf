// Authorization policies of the static config file: `policies[]` with rules → clauses → matches (3 nested
// lists), converted to the domain Authorization (docs/architecture.md "Policy and enrollment", "Configuration distribution (delta xDS)").
import type { Node } from 'yaml';
import { EMPTY_MATCH } from '../authz/match.ts';
import {
  type Authorization,
  type Clause,
  type Match,
  type PolicyAction,
  type PolicyScope,
  policyKey,
  type Rule,
  type ServiceAccountMatch,
} from '../types.ts';
import { type ConfigReader, opt, type Seen } from './reader.ts';
import { readCidr, readList, readName, readNamespace, readPort, readStringMatch } from './values.ts';

const MATCH_KEYS = Object.keys(EMPTY_MATCH) as (keyof Match)[];
const POLICY_KEYS = { required: ['name', 'namespace', 'scope', 'action', 'rules'], optional: ['dryRun'] } as const;

export function readPolicy(
  r: ConfigReader,
  policies: Seen,
  node: Node | undefined,
  path: string,
): Authorization | null {
  const f = r.fields(node, path, POLICY_KEYS);
  if (f === null) return null;
  const name = readName(r, f.get('name'), f.at('name'));
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  if (name !== null && namespace !== null)
    policies.claim(r, policyKey(namespace, name), f.at('name'), f.get('name'), 'policy');
  const scope = r.oneOf<PolicyScope>(f.get('scope'), f.at('scope'), ['Global', 'Namespace', 'WorkloadSelector']);
  const action = r.oneOf<PolicyAction>(f.get('action'), f.at('action'), ['Allow', 'Deny']);
  const dryRun = opt(f, 'dryRun', false, (n, p) => r.boolean(n, p));
  const rules = readList<Rule>(r, f.get('rules'), f.at('rules'), (rule, rp) =>
    readList<Clause>(r, rule, rp, (clause, cp) => readList(r, clause, cp, (m, mp) => readMatch(r, m, mp))),
  );
  if (name === null || namespace === null || scope === null || action === null || dryRun === null || rules === null) {
    return null;
  }
  return { name, namespace, scope, action, dryRun, rules };
}

function readMatch(r: ConfigReader, node: Node | undefined, path: string): Match | null {
  const f = r.fields(node, path, { optional: MATCH_KEYS });
  if (f === null) return null;
  const strings = (key: 'namespaces' | 'notNamespaces' | 'principals' | 'notPrincipals') => {
    const principal = key === 'principals' || key === 'notPrincipals';
    return opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readStringMatch(r, i, ip, { principal })));
  };
  const cidrs = (key: 'sourceIps' | 'notSourceIps' | 'destinationIps' | 'notDestinationIps') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readCidr(r, i, ip)));
  const ports = (key: 'destinationPorts' | 'notDestinationPorts') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readPort(r, i, ip)));
  const accounts = (key: 'serviceAccounts' | 'notServiceAccounts') =>
    opt(f, key, [], (n, p) => readList(r, n, p, (i, ip) => readServiceAccountMatch(r, i, ip)));
  const m = {
    namespaces: strings('namespaces'),
    notNamespaces: strings('notNamespaces'),
    serviceAccounts: accounts('serviceAccounts'),
    notServiceAccounts: accounts('notServiceAccounts'),
    principals: strings('principals'),
    notPrincipals: strings('notPrincipals'),
    sourceIps: cidrs('sourceIps'),
    notSourceIps: cidrs('notSourceIps'),
    destinationIps: cidrs('destinationIps'),
    notDestinationIps: cidrs('notDestinationIps'),
    destinationPorts: ports('destinationPorts'),
    notDestinationPorts: ports('notDestinationPorts'),
  };
  for (const key of MATCH_KEYS) if (m[key] === null) return null;
  return m as Match;
}

function readServiceAccountMatch(r: ConfigReader, node: Node | undefined, path: string): ServiceAccountMatch | null {
  const f = r.fields(node, path, { required: ['namespace', 'serviceAccount'] });
  if (f === null) return null;
  const namespace = readNamespace(r, f.get('namespace'), f.at('namespace'));
  const serviceAccount = readName(r, f.get('serviceAccount'), f.at('serviceAccount'));
  return namespace === null || serviceAccount === null ? null : { namespace, serviceAccount };
}
