// matchesPolicy: every Match field and its not_ form, each StringMatch kind, presence vs plaintext, and the
// empty rule / clause / match semantics (docs/architecture.md "Policy and enrollment").
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type SpiffeId, spiffeId } from '../../../../src/identity/spiffe-id.ts';
import { EMPTY_MATCH, matchesPolicy, matchesStringMatch } from '../../../../src/mesh/authz/match.ts';
import type { AuthzConnection } from '../../../../src/mesh/authz/types.ts';
import type { Authorization, Cidr, Match, Rule, StringMatch } from '../../../../src/mesh/types.ts';

const SLEEP = spiffeId('cluster.local', 'foo', 'sleep');
const mtls = (id: SpiffeId = SLEEP, extra: Partial<AuthzConnection> = {}): AuthzConnection => ({
  srcIdentity: id,
  srcIp: '10.0.0.1',
  dstIp: '10.0.0.2',
  dstPort: 8080,
  ...extra,
});
const plaintext = (extra: Partial<AuthzConnection> = {}): AuthzConnection => ({
  ...mtls(SLEEP, extra),
  srcIdentity: null,
});

const m = (fields: Partial<Match>): Match => ({ ...EMPTY_MATCH, ...fields });
const policy = (rules: readonly Rule[]): Authorization => ({
  name: 'p',
  namespace: 'ns',
  scope: 'Namespace',
  action: 'Allow',
  dryRun: false,
  rules,
});
/** One rule, one clause, one match. */
const single = (fields: Partial<Match>): Authorization => policy([[[m(fields)]]]);
const exact = (value: string): StringMatch => ({ kind: 'exact', value });
const prefix = (value: string): StringMatch => ({ kind: 'prefix', value });
const suffix = (value: string): StringMatch => ({ kind: 'suffix', value });
const presence: StringMatch = { kind: 'presence' };
const cidr = (address: string, prefixLength: number): Cidr => ({ address, prefixLength });

test('StringMatch kinds compare exact, prefix, suffix and presence', () => {
  const table: [StringMatch, string, boolean][] = [
    [exact('a/b'), 'a/b', true],
    [exact('a/b'), 'a/bc', false],
    [exact(''), '', true],
    [prefix('cluster.local/ns/'), 'cluster.local/ns/foo/sa/x', true],
    [prefix('cluster.local/ns/bar'), 'cluster.local/ns/foo/sa/x', false],
    [prefix(''), '', true],
    [suffix('/sa/x'), 'cluster.local/ns/foo/sa/x', true],
    [suffix('/sa/y'), 'cluster.local/ns/foo/sa/x', false],
    [presence, 'x', true],
    [presence, '', false],
  ];
  for (const [sm, value, want] of table)
    assert.equal(matchesStringMatch(sm, value), want, `${JSON.stringify(sm)} ~ ${value}`);
});

interface Row {
  readonly name: string;
  readonly match: Partial<Match>;
  readonly conn: AuthzConnection;
  readonly want: boolean;
}

const rows: Row[] = [
  // principals: spiffe:// stripped
  {
    name: 'principal exact matches the stripped SPIFFE ID',
    match: { principals: [exact('cluster.local/ns/foo/sa/sleep')] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'principal with spiffe:// never matches',
    match: { principals: [exact('spiffe://cluster.local/ns/foo/sa/sleep')] },
    conn: mtls(),
    want: false,
  },
  { name: 'principal prefix', match: { principals: [prefix('cluster.local/ns/foo/')] }, conn: mtls(), want: true },
  { name: 'principal suffix', match: { principals: [suffix('/sa/sleep')] }, conn: mtls(), want: true },
  { name: 'principal values OR', match: { principals: [exact('x'), suffix('/sa/sleep')] }, conn: mtls(), want: true },
  {
    name: 'principal other identity',
    match: { principals: [exact('cluster.local/ns/foo/sa/other')] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'principal other trust domain',
    match: { principals: [exact('cluster.local/ns/foo/sa/sleep')] },
    conn: mtls(spiffeId('other.td', 'foo', 'sleep')),
    want: false,
  },
  { name: 'principal presence with identity', match: { principals: [presence] }, conn: mtls(), want: true },
  {
    name: 'principal presence without identity fails',
    match: { principals: [presence] },
    conn: plaintext(),
    want: false,
  },
  {
    name: 'principal prefix "" without identity fails',
    match: { principals: [prefix('')] },
    conn: plaintext(),
    want: false,
  },
  {
    name: 'principal exact "" without identity fails',
    match: { principals: [exact('')] },
    conn: plaintext(),
    want: false,
  },
  {
    name: 'notPrincipals excludes the listed identity',
    match: { notPrincipals: [exact('cluster.local/ns/foo/sa/sleep')] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'notPrincipals passes other identities',
    match: { notPrincipals: [exact('cluster.local/ns/foo/sa/other')] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'notPrincipals presence: identity present → no match',
    match: { notPrincipals: [presence] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'notPrincipals presence: plaintext → match',
    match: { notPrincipals: [presence] },
    conn: plaintext(),
    want: true,
  },
  {
    name: 'notPrincipals any value: plaintext → match',
    match: { notPrincipals: [prefix('')] },
    conn: plaintext(),
    want: true,
  },
  // namespaces: from the certificate
  { name: 'namespace exact', match: { namespaces: [exact('foo')] }, conn: mtls(), want: true },
  { name: 'namespace other', match: { namespaces: [exact('bar')] }, conn: mtls(), want: false },
  { name: 'namespace prefix', match: { namespaces: [prefix('fo')] }, conn: mtls(), want: true },
  { name: 'namespace suffix', match: { namespaces: [suffix('oo')] }, conn: mtls(), want: true },
  { name: 'namespace presence with identity', match: { namespaces: [presence] }, conn: mtls(), want: true },
  { name: 'namespace presence without identity', match: { namespaces: [presence] }, conn: plaintext(), want: false },
  { name: 'namespace without identity compares ""', match: { namespaces: [exact('')] }, conn: plaintext(), want: true },
  { name: 'notNamespaces excludes', match: { notNamespaces: [exact('foo')] }, conn: mtls(), want: false },
  { name: 'notNamespaces passes others', match: { notNamespaces: [exact('bar')] }, conn: mtls(), want: true },
  { name: 'notNamespaces passes plaintext', match: { notNamespaces: [exact('foo')] }, conn: plaintext(), want: true },
  // serviceAccounts
  {
    name: 'serviceAccount same ns and sa',
    match: { serviceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'serviceAccount ignores trust domain',
    match: { serviceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] },
    conn: mtls(spiffeId('other.td', 'foo', 'sleep')),
    want: true,
  },
  {
    name: 'serviceAccount other ns',
    match: { serviceAccounts: [{ namespace: 'bar', serviceAccount: 'sleep' }] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'serviceAccount other sa',
    match: { serviceAccounts: [{ namespace: 'foo', serviceAccount: 'x' }] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'serviceAccount without identity',
    match: { serviceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] },
    conn: plaintext(),
    want: false,
  },
  {
    name: 'notServiceAccounts excludes',
    match: { notServiceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'notServiceAccounts passes others',
    match: { notServiceAccounts: [{ namespace: 'foo', serviceAccount: 'x' }] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'notServiceAccounts passes plaintext',
    match: { notServiceAccounts: [{ namespace: 'foo', serviceAccount: 'sleep' }] },
    conn: plaintext(),
    want: true,
  },
  // sourceIps
  { name: 'sourceIps CIDR contains', match: { sourceIps: [cidr('10.0.0.0', 8)] }, conn: mtls(), want: true },
  { name: 'sourceIps /32 exact', match: { sourceIps: [cidr('10.0.0.1', 32)] }, conn: mtls(), want: true },
  { name: 'sourceIps /32 other', match: { sourceIps: [cidr('10.0.0.3', 32)] }, conn: mtls(), want: false },
  { name: 'sourceIps /0 matches any IPv4', match: { sourceIps: [cidr('0.0.0.0', 0)] }, conn: mtls(), want: true },
  {
    name: 'sourceIps IPv6 /128',
    match: { sourceIps: [cidr('fd00::1', 128)] },
    conn: mtls(SLEEP, { srcIp: 'fd00::1' }),
    want: true,
  },
  {
    name: 'sourceIps IPv6 CIDR',
    match: { sourceIps: [cidr('fd00::', 8)] },
    conn: mtls(SLEEP, { srcIp: 'fd12::1' }),
    want: true,
  },
  {
    name: 'sourceIps IPv4 CIDR vs IPv6 source',
    match: { sourceIps: [cidr('0.0.0.0', 0)] },
    conn: mtls(SLEEP, { srcIp: 'fd00::1' }),
    want: false,
  },
  {
    name: 'sourceIps IPv4 CIDR vs mapped source',
    match: { sourceIps: [cidr('10.0.0.0', 8)] },
    conn: mtls(SLEEP, { srcIp: '::ffff:10.0.0.1' }),
    want: true,
  },
  {
    name: 'sourceIps apply to plaintext too',
    match: { sourceIps: [cidr('10.0.0.0', 8)] },
    conn: plaintext(),
    want: true,
  },
  { name: 'notSourceIps excludes', match: { notSourceIps: [cidr('10.0.0.0', 24)] }, conn: mtls(), want: false },
  { name: 'notSourceIps passes others', match: { notSourceIps: [cidr('192.168.0.0', 16)] }, conn: mtls(), want: true },
  // destinationIps
  { name: 'destinationIps contains', match: { destinationIps: [cidr('10.0.0.2', 32)] }, conn: mtls(), want: true },
  { name: 'destinationIps other', match: { destinationIps: [cidr('10.0.1.0', 24)] }, conn: mtls(), want: false },
  {
    name: 'destinationIps values OR',
    match: { destinationIps: [cidr('10.0.1.0', 24), cidr('10.0.0.0', 24)] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'notDestinationIps excludes',
    match: { notDestinationIps: [cidr('10.0.0.2', 32)] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'notDestinationIps passes others',
    match: { notDestinationIps: [cidr('10.0.0.3', 32)] },
    conn: mtls(),
    want: true,
  },
  // destinationPorts: the target port
  { name: 'destinationPorts target port', match: { destinationPorts: [8080] }, conn: mtls(), want: true },
  { name: 'destinationPorts other port', match: { destinationPorts: [80, 15008] }, conn: mtls(), want: false },
  { name: 'notDestinationPorts excludes', match: { notDestinationPorts: [8080] }, conn: mtls(), want: false },
  { name: 'notDestinationPorts passes others', match: { notDestinationPorts: [9999] }, conn: mtls(), want: true },
  // positive and negative of one field together
  {
    name: 'field and its not_ both apply',
    match: { namespaces: [prefix('f')], notNamespaces: [exact('foo')] },
    conn: mtls(),
    want: false,
  },
  {
    name: 'positive passes and negative passes',
    match: { sourceIps: [cidr('10.0.0.0', 8)], notSourceIps: [cidr('10.9.0.0', 16)] },
    conn: mtls(),
    want: true,
  },
  // fields AND
  {
    name: 'all fields matching',
    match: { namespaces: [exact('foo')], destinationPorts: [8080], sourceIps: [cidr('10.0.0.0', 8)] },
    conn: mtls(),
    want: true,
  },
  {
    name: 'one field failing fails the match',
    match: { namespaces: [exact('foo')], destinationPorts: [9090] },
    conn: mtls(),
    want: false,
  },
];

for (const row of rows) {
  test(`match: ${row.name}`, () => {
    assert.equal(matchesPolicy(single(row.match), row.conn), row.want);
  });
}

test('a policy with no rules never matches', () => {
  assert.equal(matchesPolicy(policy([]), mtls()), false);
  assert.equal(matchesPolicy(policy([]), plaintext()), false);
});

test('a rule with zero clauses matches everything', () => {
  assert.equal(matchesPolicy(policy([[]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[]]), plaintext()), true);
});

test('an empty clause matches; the other clauses of the rule still apply', () => {
  assert.equal(matchesPolicy(policy([[[]]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[[], [m({ destinationPorts: [8080] })]]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[[], [m({ destinationPorts: [1] })]]]), mtls()), false);
});

test('an all-empty Match never matches, and is skipped among others in its clause', () => {
  assert.equal(matchesPolicy(policy([[[EMPTY_MATCH]]]), mtls()), false);
  assert.equal(matchesPolicy(policy([[[EMPTY_MATCH, m({ destinationPorts: [8080] })]]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[[EMPTY_MATCH], []]]), mtls()), false);
});

test('matches in a clause OR together', () => {
  const clause = [m({ destinationPorts: [1] }), m({ namespaces: [exact('foo')] })];
  assert.equal(matchesPolicy(policy([[clause]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[clause]]), plaintext()), false);
});

test('clauses in a rule AND together', () => {
  const from = [m({ namespaces: [exact('foo')] })];
  const to = [m({ destinationPorts: [8080] })];
  assert.equal(matchesPolicy(policy([[from, to]]), mtls()), true);
  assert.equal(matchesPolicy(policy([[from, to]]), mtls(SLEEP, { dstPort: 9090 })), false);
  assert.equal(matchesPolicy(policy([[from, to]]), plaintext()), false);
});

test('rules in a policy OR together', () => {
  const r1: Rule = [[m({ namespaces: [exact('bar')] })]];
  const r2: Rule = [[m({ destinationPorts: [8080] })]];
  assert.equal(matchesPolicy(policy([r1, r2]), mtls()), true);
  assert.equal(matchesPolicy(policy([r1]), mtls()), false);
});

test('action and dryRun do not influence matching', () => {
  const p = single({ destinationPorts: [8080] });
  assert.equal(matchesPolicy({ ...p, action: 'Deny', dryRun: true }, mtls()), true);
});
