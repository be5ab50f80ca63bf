// AuthorizationPolicy → Authorization: one table case per conversion rule of docs/architecture.md "Policy and enrollment",
// plus the edge cases `{}` (ALLOW nothing), `rules: [{}]` (ALLOW everything) and L7 content in ALLOW vs DENY.
// Where it matters the converted policy is also evaluated against connections (what a user would notice).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import { evaluateAuthz } from '../../../src/mesh/authz/evaluate.ts';
import { EMPTY_MATCH } from '../../../src/mesh/authz/match.ts';
import type { Authorization, Match } from '../../../src/mesh/types.ts';
import { ns as nsDoc, translateYaml } from '../../helpers/controller-fixtures.ts';

function policy(spec: string, ns = 'demo', extraMeta = ''): ReturnType<typeof translateYaml> {
  return translateYaml(
    `${nsDoc('demo')}apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ${ns}${extraMeta}}\nspec: ${spec}\n`,
  );
}

function one(spec: string, ns = 'demo'): Authorization {
  const r = policy(spec, ns);
  assert.deepEqual(r.parseDiagnostics, []);
  assert.equal(r.config.policies.length, 1, JSON.stringify(r.diagnostics));
  return r.config.policies[0]!;
}

const m = (fields: Partial<Match>): Match => ({ ...EMPTY_MATCH, ...fields });

const cases: {
  name: string;
  spec: string;
  ns?: string;
  rules: Authorization['rules'];
  scope?: string;
  action?: string;
}[] = [
  { name: '{} spec: ALLOW with no rules (allows nothing)', spec: '{}', rules: [], scope: 'Namespace', action: 'Allow' },
  { name: 'rules: [{}] (a rule with no conditions matches everything)', spec: '{rules: [{}]}', rules: [[]] },
  {
    name: 'root namespace, no selector → Global',
    spec: '{rules: [{}]}',
    ns: 'istio-system',
    rules: [[]],
    scope: 'Global',
  },
  {
    name: 'selector → WorkloadSelector',
    spec: '{selector: {matchLabels: {app: a}}, rules: [{}]}',
    rules: [[]],
    scope: 'WorkloadSelector',
  },
  {
    name: 'empty matchLabels is no selector',
    spec: '{selector: {matchLabels: {}}, rules: [{}]}',
    rules: [[]],
    scope: 'Namespace',
  },
  { name: 'DENY action', spec: '{action: DENY, rules: [{}]}', rules: [[]], action: 'Deny' },
  {
    name: 'principals: exact, "*" presence, prefix "x*", suffix "*x"',
    spec: '{rules: [{from: [{source: {principals: ["cluster.local/ns/a/sa/b", "*", "cluster.local/ns/a/*", "*/sa/b"]}}]}]}',
    rules: [
      [
        [
          m({
            principals: [
              { kind: 'exact', value: 'cluster.local/ns/a/sa/b' },
              { kind: 'presence' },
              { kind: 'prefix', value: 'cluster.local/ns/a/' },
              { kind: 'suffix', value: '/sa/b' },
            ],
          }),
        ],
      ],
    ],
  },
  {
    name: 'namespaces and notNamespaces in one source AND together',
    spec: '{rules: [{from: [{source: {namespaces: [a], notNamespaces: [b]}}]}]}',
    rules: [[[m({ namespaces: [{ kind: 'exact', value: 'a' }], notNamespaces: [{ kind: 'exact', value: 'b' }] })]]],
  },
  {
    name: 'serviceAccounts: bare name = the policy namespace; ns/name as written',
    spec: '{rules: [{from: [{source: {serviceAccounts: [sleep, other/x], notServiceAccounts: [y]}}]}]}',
    rules: [
      [
        [
          m({
            serviceAccounts: [
              { namespace: 'demo', serviceAccount: 'sleep' },
              { namespace: 'other', serviceAccount: 'x' },
            ],
            notServiceAccounts: [{ namespace: 'demo', serviceAccount: 'y' }],
          }),
        ],
      ],
    ],
  },
  {
    name: 'ipBlocks / notIpBlocks → source CIDRs',
    spec: '{rules: [{from: [{source: {ipBlocks: ["10.0.0.0/8", "10.1.2.3"], notIpBlocks: ["2001:db8::/32"]}}]}]}',
    rules: [
      [
        [
          m({
            sourceIps: [
              { address: '10.0.0.0', prefixLength: 8 },
              { address: '10.1.2.3', prefixLength: 32 },
            ],
            notSourceIps: [{ address: '2001:db8::', prefixLength: 32 }],
          }),
        ],
      ],
    ],
  },
  {
    name: 'several from entries OR in one clause; to is another clause',
    spec: '{rules: [{from: [{source: {namespaces: [a]}}, {source: {namespaces: [b]}}], to: [{operation: {ports: ["80"], notPorts: ["81"]}}]}]}',
    rules: [
      [
        [m({ namespaces: [{ kind: 'exact', value: 'a' }] }), m({ namespaces: [{ kind: 'exact', value: 'b' }] })],
        [m({ destinationPorts: [80], notDestinationPorts: [81] })],
      ],
    ],
  },
  {
    name: 'when on every L4 key: one clause each',
    spec: `{rules: [{when: [{key: source.ip, values: ["10.0.0.0/8"]}, {key: source.namespace, notValues: [x]}, {key: source.principal, values: ["*"]}, {key: destination.ip, values: ["10.1.0.1"]}, {key: destination.port, values: ["8080"]}]}]}`,
    rules: [
      [
        [m({ sourceIps: [{ address: '10.0.0.0', prefixLength: 8 }] })],
        [m({ notNamespaces: [{ kind: 'exact', value: 'x' }] })],
        [m({ principals: [{ kind: 'presence' }] })],
        [m({ destinationIps: [{ address: '10.1.0.1', prefixLength: 32 }] })],
        [m({ destinationPorts: [8080] })],
      ],
    ],
  },
  {
    name: 'ALLOW rule with L7 content is dropped; other rules stay',
    spec: '{rules: [{to: [{operation: {methods: [GET]}}]}, {from: [{source: {namespaces: [a]}}]}]}',
    rules: [[[m({ namespaces: [{ kind: 'exact', value: 'a' }] })]]],
  },
  {
    name: 'ALLOW with only an L7 rule allows nothing',
    spec: '{rules: [{from: [{source: {requestPrincipals: ["*"]}}]}]}',
    rules: [],
  },
  {
    name: 'DENY rule keeps its L4 part (ports), drops L7 (paths, header when)',
    spec: '{action: DENY, rules: [{to: [{operation: {ports: ["80"], paths: ["/admin"]}}], when: [{key: "request.headers[x]", values: [y]}]}]}',
    rules: [[[m({ destinationPorts: [80] })]]],
  },
  {
    name: 'DENY rule with only L7 content becomes deny-all (broader)',
    spec: '{action: DENY, rules: [{from: [{source: {remoteIpBlocks: ["1.2.3.4"]}}], to: [{operation: {hosts: [x]}}]}]}',
    rules: [[]],
  },
];

for (const c of cases) {
  test(`authz conversion: ${c.name}`, () => {
    const p = one(c.spec, c.ns);
    assert.deepEqual(p.rules, c.rules);
    if (c.scope !== undefined) assert.equal(p.scope, c.scope);
    if (c.action !== undefined) assert.equal(p.action, c.action);
  });
}

test('authz: `{}` denies every connection, `rules: [{}]` allows every one (evaluated)', () => {
  const conn = {
    srcIdentity: spiffeId('cluster.local', 'a', 'b'),
    srcIp: '10.0.0.9',
    dstIp: '10.0.0.1',
    dstPort: 8080,
  };
  assert.equal(evaluateAuthz([one('{}')], conn).kind, 'deny');
  assert.equal(evaluateAuthz([one('{rules: [{}]}')], conn).kind, 'allow');
});

test('authz: L7 in ALLOW and DENY reports a warning naming the rule and the fields', () => {
  const r = policy('{rules: [{to: [{operation: {methods: [GET]}}]}]}');
  assert.deepEqual(
    r.diagnostics.map((d) => [d.severity, d.code, d.object, d.field]),
    [['warning', 'FERRY_TRANSLATE_UNSUPPORTED', 'AuthorizationPolicy/demo/p', 'spec.rules[0]']],
  );
  assert.match(r.diagnostics[0]!.message, /spec\.rules\[0\]\.to\[0\]\.operation\.methods/);
});

test('authz: AUDIT and CUSTOM are reported and not sent; targetRefs policies are waypoint-only', () => {
  for (const action of ['AUDIT', 'CUSTOM']) {
    const r = policy(`{action: ${action}, rules: [{}]}`);
    assert.equal(r.config.policies.length, 0);
    assert.deepEqual(
      r.diagnostics.map((d) => [d.code, d.field]),
      [['FERRY_TRANSLATE_UNSUPPORTED', 'spec.action']],
    );
  }
  const r = policy('{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}], rules: [{}]}');
  assert.equal(r.config.policies.length, 0);
  assert.deepEqual(r.diagnostics, []);
});

test('authz: dry-run annotation; v1beta1 accepted', () => {
  const r = translateYaml(
    nsDoc('demo') +
      'apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: demo, annotations: {istio.io/dry-run: "true"}}\nspec: {}\n',
  );
  assert.equal(r.config.policies[0]?.dryRun, true);
});

test('authz: invalid values reject the policy with an error naming the field', () => {
  const bad: [string, string][] = [
    ['{rules: [{from: [{source: {ipBlocks: ["10.0.0.300"]}}]}]}', 'spec.rules[0].from[0].source.ipBlocks[0]'],
    ['{rules: [{to: [{operation: {ports: ["http"]}}]}]}', 'spec.rules[0].to[0].operation.ports[0]'],
    ['{rules: [{to: [{operation: {ports: ["70000"]}}]}]}', 'spec.rules[0].to[0].operation.ports[0]'],
    ['{rules: [{from: [{source: {serviceAccounts: ["a/b/c"]}}]}]}', 'spec.rules[0].from[0].source.serviceAccounts[0]'],
    ['{rules: [{when: [{key: destination.port}]}]}', 'spec.rules[0].when[0]'],
  ];
  for (const [spec, field] of bad) {
    const r = policy(spec);
    assert.equal(r.config.policies.length, 0, spec);
    assert.deepEqual(
      r.diagnostics.map((d) => [d.severity, d.field]),
      [['error', field]],
      spec,
    );
  }
});

test('authz: structural mistakes are rejected by the source (unknown field, empty source, bad action)', () => {
  const bad: [string, string][] = [
    ['{rules: [{from: [{source: {principal: [x]}}]}]}', 'spec.rules[0].from[0].source.principal'],
    ['{rules: [{from: [{source: {}}]}]}', 'spec.rules[0].from[0].source'],
    ['{action: MAYBE}', 'spec.action'],
    ['{selector: {matchLabels: {app: [x]}}}', 'spec.selector.matchLabels["app"]'],
  ];
  for (const [spec, field] of bad) {
    const r = policy(spec);
    assert.equal(r.config.policies.length, 0, spec);
    assert.deepEqual(
      r.parseDiagnostics.map((d) => [d.severity, d.object, d.field]),
      [['error', 'AuthorizationPolicy/demo/p', field]],
      spec,
    );
  }
});
