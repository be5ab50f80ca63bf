// evaluateAuthz: Istio's order (DENY → no ALLOW → any ALLOW → deny), dry-run reporting, STRICT vs mTLS and
// plaintext, determinism, and randomized properties.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spiffeId } from '../../../../src/identity/spiffe-id.ts';
import { evaluateAuthz } from '../../../../src/mesh/authz/evaluate.ts';
import { EMPTY_MATCH, matchesPolicy } from '../../../../src/mesh/authz/match.ts';
import { portLevelMtlsPolicy, staticStrictPolicy } from '../../../../src/mesh/authz/strict.ts';
import type { AuthzConnection, AuthzVerdict } from '../../../../src/mesh/authz/types.ts';
import type { Authorization, Match, PolicyAction } from '../../../../src/mesh/types.ts';

const SLEEP = spiffeId('cluster.local', 'foo', 'sleep');
const conn: AuthzConnection = { srcIdentity: SLEEP, srcIp: '10.0.0.1', dstIp: '10.0.0.2', dstPort: 8080 };
const plain: AuthzConnection = { ...conn, srcIdentity: null };

const m = (fields: Partial<Match>): Match => ({ ...EMPTY_MATCH, ...fields });
function pol(
  name: string,
  action: PolicyAction,
  fields: Partial<Match> | 'all' | 'none',
  dryRun = false,
): Authorization {
  const rules = fields === 'all' ? [[]] : fields === 'none' ? [] : [[[m(fields)]]];
  return { name, namespace: 'ns', scope: 'Namespace', action, dryRun, rules };
}
const matching = (name: string, action: PolicyAction, dryRun = false) => pol(name, action, 'all', dryRun);
const notMatching = (name: string, action: PolicyAction, dryRun = false) =>
  pol(name, action, { destinationPorts: [1] }, dryRun);

const allow = { kind: 'allow', dryRun: [] } as const;
const notAllowed = { kind: 'deny', code: 'FERRY_AUTHZ_NOT_ALLOWED', dryRun: [] } as const;
const deniedBy = (name: string) =>
  ({ kind: 'deny', code: 'FERRY_AUTHZ_DENIED', policy: `ns/${name}`, dryRun: [] }) as const;

interface Row {
  readonly name: string;
  readonly policies: Authorization[];
  readonly want: AuthzVerdict;
}

const rows: Row[] = [
  { name: 'no policies → allow', policies: [], want: allow },
  { name: 'only a non-matching DENY → allow', policies: [notMatching('d', 'Deny')], want: allow },
  { name: 'a matching DENY → denied, naming it', policies: [matching('d', 'Deny')], want: deniedBy('d') },
  { name: 'a matching ALLOW → allow', policies: [matching('a', 'Allow')], want: allow },
  { name: 'ALLOW policies but none matches → not allowed', policies: [notMatching('a', 'Allow')], want: notAllowed },
  { name: 'an ALLOW with no rules allows nothing', policies: [pol('a', 'Allow', 'none')], want: notAllowed },
  { name: 'a DENY with no rules denies nothing', policies: [pol('d', 'Deny', 'none')], want: allow },
  {
    name: 'DENY beats a matching ALLOW',
    policies: [matching('a', 'Allow'), matching('d', 'Deny')],
    want: deniedBy('d'),
  },
  {
    name: 'one matching ALLOW among several suffices',
    policies: [notMatching('a1', 'Allow'), matching('a2', 'Allow')],
    want: allow,
  },
  {
    name: 'non-matching DENY plus non-matching ALLOW → not allowed',
    policies: [notMatching('d', 'Deny'), notMatching('a', 'Allow')],
    want: notAllowed,
  },
  {
    name: 'first matching DENY in input order is named',
    policies: [notMatching('d0', 'Deny'), matching('d1', 'Deny'), matching('d2', 'Deny')],
    want: deniedBy('d1'),
  },
  {
    name: 'dry-run DENY never denies',
    policies: [matching('d', 'Deny', true)],
    want: { kind: 'allow', dryRun: [{ policy: 'ns/d', action: 'Deny', matched: true }] },
  },
  {
    name: 'dry-run ALLOW does not make other traffic not-allowed',
    policies: [notMatching('a', 'Allow', true)],
    want: { kind: 'allow', dryRun: [{ policy: 'ns/a', action: 'Allow', matched: false }] },
  },
  {
    name: 'dry-run ALLOW that matches does not rescue an enforced ALLOW miss',
    policies: [matching('dry', 'Allow', true), notMatching('a', 'Allow')],
    want: {
      kind: 'deny',
      code: 'FERRY_AUTHZ_NOT_ALLOWED',
      dryRun: [{ policy: 'ns/dry', action: 'Allow', matched: true }],
    },
  },
  {
    name: 'dry-run findings are reported with an enforced deny, in input order',
    policies: [notMatching('x', 'Deny', true), matching('d', 'Deny'), matching('y', 'Allow', true)],
    want: {
      kind: 'deny',
      code: 'FERRY_AUTHZ_DENIED',
      policy: 'ns/d',
      dryRun: [
        { policy: 'ns/x', action: 'Deny', matched: false },
        { policy: 'ns/y', action: 'Allow', matched: true },
      ],
    },
  },
];

for (const row of rows) {
  test(`evaluate: ${row.name}`, () => {
    assert.deepEqual(evaluateAuthz(row.policies, conn), row.want);
  });
}

test('STRICT denies plaintext and allows any mTLS peer', () => {
  const strict = staticStrictPolicy();
  assert.deepEqual(evaluateAuthz([strict], plain), {
    kind: 'deny',
    code: 'FERRY_AUTHZ_DENIED',
    policy: 'istio-system/istio_converted_static_strict',
    dryRun: [],
  });
  assert.deepEqual(evaluateAuthz([strict], conn), allow);
  assert.deepEqual(evaluateAuthz([strict], { ...conn, srcIdentity: spiffeId('other.td', 'x', 'y') }), allow);
});

test('STRICT takes the root namespace as a parameter', () => {
  const strict = staticStrictPolicy('mesh-root');
  assert.equal(strict.namespace, 'mesh-root');
  const verdict = evaluateAuthz([strict], plain);
  assert.equal(
    verdict.kind === 'deny' && verdict.code === 'FERRY_AUTHZ_DENIED' && verdict.policy,
    'mesh-root/istio_converted_static_strict',
  );
});

test('STRICT plus an ALLOW for one namespace: plaintext denied by STRICT, others not allowed', () => {
  const policies = [staticStrictPolicy(), pol('from-foo', 'Allow', { namespaces: [{ kind: 'exact', value: 'foo' }] })];
  assert.deepEqual(evaluateAuthz(policies, conn), allow);
  assert.equal(evaluateAuthz(policies, { ...conn, srcIdentity: spiffeId('cluster.local', 'bar', 'x') }).kind, 'deny');
  const verdict = evaluateAuthz(policies, plain);
  assert.equal(verdict.kind === 'deny' && verdict.code, 'FERRY_AUTHZ_DENIED');
});

test('PERMISSIVE (no STRICT policy) lets plaintext through', () => {
  assert.deepEqual(evaluateAuthz([], plain), allow);
});

test('port-level mTLS: STRICT workload with a PERMISSIVE port', () => {
  const p = portLevelMtlsPolicy({
    namespace: 'ns',
    name: 'pa',
    defaultMode: 'STRICT',
    ports: new Map([[9090, 'PERMISSIVE']]),
  });
  assert.ok(p !== null);
  assert.equal(p.name, 'converted_peer_authentication_pa');
  assert.equal(evaluateAuthz([p], { ...plain, dstPort: 9090 }).kind, 'allow');
  assert.equal(evaluateAuthz([p], { ...plain, dstPort: 8080 }).kind, 'deny');
  assert.equal(evaluateAuthz([p], { ...conn, dstPort: 8080 }).kind, 'allow');
});

test('port-level mTLS: PERMISSIVE workload with a STRICT port', () => {
  const p = portLevelMtlsPolicy({
    namespace: 'ns',
    name: 'pa',
    defaultMode: 'PERMISSIVE',
    ports: new Map([[9090, 'STRICT']]),
  });
  assert.ok(p !== null);
  assert.equal(evaluateAuthz([p], { ...plain, dstPort: 9090 }).kind, 'deny');
  assert.equal(evaluateAuthz([p], { ...plain, dstPort: 8080 }).kind, 'allow');
  assert.equal(evaluateAuthz([p], { ...conn, dstPort: 9090 }).kind, 'allow');
});

test('port-level mTLS without exceptions needs no policy', () => {
  assert.equal(
    portLevelMtlsPolicy({ namespace: 'ns', name: 'pa', defaultMode: 'STRICT', ports: new Map([[80, 'STRICT']]) }),
    null,
  );
  assert.equal(portLevelMtlsPolicy({ namespace: 'ns', name: 'pa', defaultMode: 'PERMISSIVE', ports: new Map() }), null);
});

// ---- randomized properties ----

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomPolicy(rand: () => number, i: number): Authorization {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const randomMatch = (): Match => {
    const fields: { -readonly [K in keyof Match]?: Match[K] } = {};
    if (rand() < 0.4) fields.destinationPorts = [pick([80, 8080, 9090])];
    if (rand() < 0.3) fields.notDestinationPorts = [pick([80, 8080, 9090])];
    if (rand() < 0.4)
      fields.namespaces = [
        pick([{ kind: 'exact', value: 'foo' }, { kind: 'prefix', value: 'b' }, { kind: 'presence' }] as const),
      ];
    if (rand() < 0.3) fields.notPrincipals = [{ kind: 'presence' }];
    if (rand() < 0.3)
      fields.sourceIps = [
        pick([
          { address: '10.0.0.0', prefixLength: 8 },
          { address: '10.0.0.1', prefixLength: 32 },
        ]),
      ];
    return m(fields);
  };
  const rules = Array.from({ length: Math.floor(rand() * 3) }, () =>
    Array.from({ length: Math.floor(rand() * 3) }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 2) }, randomMatch),
    ),
  );
  return {
    name: `p${i}`,
    namespace: 'ns',
    scope: 'Namespace',
    action: rand() < 0.5 ? 'Allow' : 'Deny',
    dryRun: rand() < 0.2,
    rules,
  };
}

function randomConn(rand: () => number): AuthzConnection {
  const ns = ['foo', 'bar', 'baz'][Math.floor(rand() * 3)]!;
  return {
    srcIdentity: rand() < 0.3 ? null : spiffeId('cluster.local', ns, 'sa'),
    srcIp: rand() < 0.5 ? '10.0.0.1' : '192.168.1.1',
    dstIp: '10.0.0.2',
    dstPort: [80, 8080, 9090][Math.floor(rand() * 3)]!,
  };
}

const strip = (v: AuthzVerdict) => ({ ...v, dryRun: [] });

test('property: adding a DENY that does not match never changes the enforced verdict', () => {
  const rand = rng(42);
  for (let i = 0; i < 2000; i++) {
    const policies = Array.from({ length: Math.floor(rand() * 5) }, (_, j) => randomPolicy(rand, j));
    const c = randomConn(rand);
    const extra = { ...randomPolicy(rand, 99), action: 'Deny', dryRun: false } as const;
    if (matchesPolicy(extra, c)) continue;
    const at = Math.floor(rand() * (policies.length + 1));
    const withExtra = [...policies.slice(0, at), extra, ...policies.slice(at)];
    assert.deepEqual(strip(evaluateAuthz(withExtra, c)), strip(evaluateAuthz(policies, c)));
  }
});

test('property: dry-run policies never change the enforced verdict', () => {
  const rand = rng(7);
  for (let i = 0; i < 2000; i++) {
    const policies = Array.from({ length: Math.floor(rand() * 6) }, (_, j) => randomPolicy(rand, j));
    const c = randomConn(rand);
    const enforcedOnly = policies.filter((p) => !p.dryRun);
    assert.deepEqual(strip(evaluateAuthz(policies, c)), strip(evaluateAuthz(enforcedOnly, c)));
  }
});

test('property: a matching enforced DENY always denies; adding a matching ALLOW never turns allow into deny', () => {
  const rand = rng(99);
  for (let i = 0; i < 2000; i++) {
    const policies = Array.from({ length: Math.floor(rand() * 5) }, (_, j) => randomPolicy(rand, j));
    const c = randomConn(rand);
    assert.equal(evaluateAuthz([...policies, matching('dd', 'Deny')], c).kind, 'deny');
    const before = evaluateAuthz(policies, c);
    const after = evaluateAuthz([...policies, matching('aa', 'Allow')], c);
    if (before.kind === 'allow') assert.equal(after.kind, 'allow');
  }
});
