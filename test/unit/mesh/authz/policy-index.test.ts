// The candidate index (policy-index.ts): which policies a connection is matched against (table), and the
// property that the indexed decision equals the linear one on random policy lists and connections.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { spiffeId } from '../../../../src/identity/spiffe-id.ts';
import {
  evaluateAuthz,
  evaluateAuthzIndexed,
  evaluateAuthzLinear,
  INDEX_MIN_POLICIES,
} from '../../../../src/mesh/authz/evaluate.ts';
import { EMPTY_MATCH, subjectOf } from '../../../../src/mesh/authz/match.ts';
import { buildPolicyIndex, candidatePositions } from '../../../../src/mesh/authz/policy-index.ts';
import type { AuthzConnection } from '../../../../src/mesh/authz/types.ts';
import type { Authorization, Clause, Match, Rule, StringMatch } from '../../../../src/mesh/types.ts';

const m = (fields: Partial<Match>): Match => ({ ...EMPTY_MATCH, ...fields });
const exact = (value: string): StringMatch => ({ kind: 'exact', value });
const pol = (name: string, rules: Rule[], action: 'Allow' | 'Deny' = 'Allow', dryRun = false): Authorization => ({
  name,
  namespace: 'ns',
  scope: 'Namespace',
  action,
  dryRun,
  rules,
});
const rule = (...clauses: Clause[]): Rule => clauses;

const FOO_SLEEP = spiffeId('cluster.local', 'foo', 'sleep');
const conn = (over: Partial<AuthzConnection> = {}): AuthzConnection => ({
  srcIdentity: FOO_SLEEP,
  srcIp: '10.0.0.1',
  dstIp: '10.0.0.2',
  dstPort: 8080,
  ...over,
});

interface CandidateRow {
  readonly name: string;
  readonly policy: Authorization;
  readonly candidateFor: readonly AuthzConnection[];
  readonly notCandidateFor: readonly AuthzConnection[];
}

const candidateRows: CandidateRow[] = [
  {
    name: 'exact principal guards the policy',
    policy: pol('p', [rule([m({ principals: [exact('cluster.local/ns/foo/sa/sleep')] })])]),
    candidateFor: [conn()],
    notCandidateFor: [conn({ srcIdentity: spiffeId('cluster.local', 'foo', 'other') }), conn({ srcIdentity: null })],
  },
  {
    name: 'a prefix principal gives no guard (another clause may)',
    policy: pol('p', [rule([m({ principals: [{ kind: 'prefix', value: 'cluster.local/' }] })])]),
    candidateFor: [conn(), conn({ srcIdentity: null })],
    notCandidateFor: [],
  },
  {
    name: 'service account guard (namespace + name)',
    policy: pol('p', [rule([m({ serviceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] })])]),
    candidateFor: [conn()],
    notCandidateFor: [conn({ srcIdentity: spiffeId('cluster.local', 'bar', 'sleep') }), conn({ srcIdentity: null })],
  },
  {
    name: 'exact namespace "" is a plaintext connection',
    policy: pol('p', [rule([m({ namespaces: [exact('')] })])]),
    candidateFor: [conn({ srcIdentity: null })],
    notCandidateFor: [conn()],
  },
  {
    name: 'destination port guard',
    policy: pol('p', [rule([m({ destinationPorts: [80, 8080] })])]),
    candidateFor: [conn(), conn({ dstPort: 80 })],
    notCandidateFor: [conn({ dstPort: 9090 })],
  },
  {
    name: 'a clause guards only when all its non-empty matches share a dimension',
    policy: pol('p', [rule([m({ destinationPorts: [80] }), m({ principals: [exact('x')] })])]),
    candidateFor: [conn({ dstPort: 9090 })],
    notCandidateFor: [],
  },
  {
    name: 'empty matches are skipped: the other match guards the clause',
    policy: pol('p', [rule([m({}), m({ destinationPorts: [80] })])]),
    candidateFor: [conn({ dstPort: 80 })],
    notCandidateFor: [conn()],
  },
  {
    name: 'the most selective clause of a rule guards it (principal over port)',
    policy: pol('p', [
      rule([m({ destinationPorts: [8080] })], [m({ principals: [exact('cluster.local/ns/x/sa/y')] })]),
    ]),
    candidateFor: [],
    notCandidateFor: [conn()],
  },
  {
    name: 'rules guarded by different attributes: a candidate when either guard holds',
    policy: pol('p', [
      rule([m({ destinationPorts: [80] })]),
      rule([m({ principals: [exact('cluster.local/ns/foo/sa/sleep')] })]),
    ]),
    candidateFor: [conn(), conn({ srcIdentity: null, dstPort: 80 })],
    notCandidateFor: [conn({ srcIdentity: null })],
  },
  {
    name: 'a rule with no clauses matches everything: unguarded',
    policy: pol('p', [rule([m({ destinationPorts: [80] })]), rule()]),
    candidateFor: [conn({ srcIdentity: null, dstPort: 1 })],
    notCandidateFor: [],
  },
  {
    name: 'only source IPs: unguarded',
    policy: pol('p', [rule([m({ sourceIps: [{ address: '10.0.0.0', prefixLength: 8 }] })])]),
    candidateFor: [conn()],
    notCandidateFor: [],
  },
  {
    name: 'a policy with no rules never matches: never a candidate',
    policy: pol('p', []),
    candidateFor: [],
    notCandidateFor: [conn(), conn({ srcIdentity: null })],
  },
  {
    name: 'a clause of empty matches never matches: never a candidate',
    policy: pol('p', [rule([m({})])]),
    candidateFor: [],
    notCandidateFor: [conn()],
  },
];

for (const row of candidateRows) {
  test(`candidates: ${row.name}`, () => {
    const index = buildPolicyIndex([row.policy]);
    for (const c of row.candidateFor) assert.deepEqual(candidatePositions(index, subjectOf(c)), [0], 'candidate');
    for (const c of row.notCandidateFor) assert.deepEqual(candidatePositions(index, subjectOf(c)), [], 'not one');
  });
}

test('candidates come back in input order without duplicates', () => {
  const port = pol('port', [rule([m({ destinationPorts: [8080] })])]);
  const both = pol('both', [rule([m({ destinationPorts: [8080] })]), rule([m({ namespaces: [exact('foo')] })])]);
  const any = pol('any', [rule()]);
  const index = buildPolicyIndex([both, port, any, port]);
  assert.deepEqual(candidatePositions(index, subjectOf(conn())), [0, 1, 2, 3]);
});

test('no enforced ALLOW among candidates still means "ALLOW policies exist": not allowed', () => {
  const allowOther = pol('a', [rule([m({ principals: [exact('cluster.local/ns/x/sa/y')] })])]);
  const list = Object.freeze(Array.from({ length: INDEX_MIN_POLICIES }, (_, i) => ({ ...allowOther, name: `a${i}` })));
  assert.deepEqual(evaluateAuthz(list, conn()), { kind: 'deny', code: 'FERRY_AUTHZ_NOT_ALLOWED', dryRun: [] });
});

// ---- property: indexed ≡ linear ----

const NAMESPACES = ['foo', 'bar', ''];
const ACCOUNTS = ['sleep', 'web'];
const PORTS = [80, 8080, 9090];
const principalOf = (ns: string, sa: string) => `cluster.local/ns/${ns}/sa/${sa}`;

const stringMatchArb = (values: readonly string[]): fc.Arbitrary<StringMatch> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...values).map(exact) },
    fc.constantFrom<StringMatch>({ kind: 'presence' }, { kind: 'prefix', value: 'cluster.local/ns/f' }),
    fc.constantFrom(...values).map((v): StringMatch => ({ kind: 'suffix', value: v.slice(-3) })),
  );
const principalValues = NAMESPACES.flatMap((ns) => ACCOUNTS.map((sa) => principalOf(ns, sa)));
const list = <T>(arb: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant([] as T[]) }, fc.array(arb, { minLength: 1, maxLength: 2 }));
const matchArb: fc.Arbitrary<Match> = fc.record({
  namespaces: list(stringMatchArb(NAMESPACES)),
  notNamespaces: list(stringMatchArb(NAMESPACES)),
  serviceAccounts: list(
    fc.record({ namespace: fc.constantFrom(...NAMESPACES), serviceAccount: fc.constantFrom(...ACCOUNTS) }),
  ),
  notServiceAccounts: list(
    fc.record({ namespace: fc.constantFrom(...NAMESPACES), serviceAccount: fc.constantFrom(...ACCOUNTS) }),
  ),
  principals: list(stringMatchArb(principalValues)),
  notPrincipals: list(stringMatchArb(principalValues)),
  sourceIps: list(fc.constantFrom({ address: '10.0.0.0', prefixLength: 8 }, { address: '10.0.0.1', prefixLength: 32 })),
  notSourceIps: list(fc.constantFrom({ address: '10.0.0.1', prefixLength: 32 })),
  destinationIps: list(fc.constantFrom({ address: '10.0.0.2', prefixLength: 32 })),
  notDestinationIps: list(fc.constantFrom({ address: '10.0.0.2', prefixLength: 32 })),
  destinationPorts: list(fc.constantFrom(...PORTS)),
  notDestinationPorts: list(fc.constantFrom(...PORTS)),
});
const policyArb: fc.Arbitrary<Authorization> = fc.record({
  name: fc.constantFrom('a', 'b', 'c', 'd'),
  namespace: fc.constant('ns'),
  scope: fc.constant('Namespace' as const),
  action: fc.constantFrom('Allow' as const, 'Deny' as const),
  dryRun: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, fc.constant(true)),
  rules: fc.array(fc.array(fc.array(matchArb, { maxLength: 3 }), { maxLength: 3 }), { maxLength: 3 }),
});
const connArb: fc.Arbitrary<AuthzConnection> = fc.record({
  srcIdentity: fc.option(
    fc
      .record({ ns: fc.constantFrom('foo', 'bar'), sa: fc.constantFrom(...ACCOUNTS) })
      .map(({ ns, sa }) => spiffeId('cluster.local', ns, sa)),
    { freq: 4 },
  ),
  srcIp: fc.constantFrom('10.0.0.1', '192.168.1.1'),
  dstIp: fc.constantFrom('10.0.0.2', '10.0.0.3'),
  dstPort: fc.constantFrom(...PORTS),
});

test('property: the indexed verdict equals the linear one (random policy lists and connections)', () => {
  fc.assert(
    fc.property(fc.array(policyArb, { maxLength: 40 }), fc.array(connArb, { minLength: 1, maxLength: 5 }), (ps, cs) => {
      const named = ps.map((p, i) => ({ ...p, name: `${p.name}${i}` }));
      const index = buildPolicyIndex(named);
      const frozen = Object.freeze([...named]);
      for (const c of cs) {
        const want = evaluateAuthzLinear(named, c);
        assert.deepEqual(evaluateAuthzIndexed(index, c), want);
        assert.deepEqual(evaluateAuthz(frozen, c), want); // the memoized path (indexed from 16 policies on)
      }
    }),
    { numRuns: 2000, seed: 9 },
  );
});
