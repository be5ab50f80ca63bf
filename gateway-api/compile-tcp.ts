// TCPRoute (gateway.networking.k8s.io/v1alpha2, experimental channel; v1 accepted too) as written → a
// CompiledRule with only weighted backends: the waypoint picks one per connection and splices the bytes
// (src/waypoint/tcp-route.ts). A TCPRoute has nothing to match on, so only its first rule can ever be
// chosen: further rules are dropped with a reason rather than ignored. Backends may have any appProtocol.
// Pure; never throws.
import { isObj, type RouteProblem, RuleProblems, type RuleScope } from './compile-common.ts';
import { type RuleOutcome, readBackends, readRuleName } from './compile-rule.ts';

export function compileTcpRule(raw: unknown, index: number, scope: RuleScope): RuleOutcome {
  const at = `spec.rules[${index}]`;
  const p = new RuleProblems();
  const unresolved: RouteProblem[] = [];
  if (!isObj(raw)) {
    p.invalid(at, 'must be an object');
    return { rule: null, invalid: p.list, unresolved };
  }
  if (index > 0) {
    p.invalid(at, 'a TCPRoute has no matches, so only its first rule can be used (Ferry drops the others)');
    return { rule: null, invalid: p.list, unresolved };
  }
  const name = raw.name === undefined ? null : readRuleName(raw.name, `${at}.name`, p);
  for (const key of Object.keys(raw)) {
    if (key !== 'name' && key !== 'backendRefs') p.invalid(`${at}.${key}`, 'unknown field in a TCPRoute rule');
  }
  if (Array.isArray(raw.backendRefs)) {
    raw.backendRefs.forEach((b: unknown, i: number) => {
      if (isObj(b) && b.filters !== undefined)
        p.invalid(`${at}.backendRefs[${i}].filters`, 'TCPRoute backendRefs have no filters');
    });
  }
  const backends = readBackends(raw.backendRefs, `${at}.backendRefs`, p, scope, unresolved);
  if (p.list.length > 0 || backends === null) return { rule: null, invalid: p.list, unresolved };
  return {
    rule: {
      route: scope.routeKey,
      ruleIndex: index,
      name,
      matches: [],
      filters: [],
      backends,
      timeouts: { requestMs: null, backendRequestMs: null },
      retry: null,
    },
    invalid: [],
    unresolved,
  };
}
