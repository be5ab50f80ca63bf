import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileL7Policy } from '../../../src/waypoint/authz/compile.ts';
import { evaluateL7, type L7RequestContext, policiesFor } from '../../../src/waypoint/authz/evaluate.ts';

const WP = { namespace: 'shop', name: 'waypoint' };
const gatewayRef = { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'waypoint' };

function policy(name: string, spec: Record<string, unknown>, namespace = 'shop') {
  const out = compileL7Policy({
    namespace,
    name,
    creationTimestampMs: null,
    sequence: 0,
    spec: { targetRefs: [gatewayRef], ...spec },
  });
  if (out.policy === null) throw new Error(JSON.stringify(out.problems));
  return out.policy;
}

const ctx = (over: Partial<L7RequestContext> = {}): L7RequestContext => ({
  sourcePrincipal: 'spiffe://cluster.local/ns/shop/sa/client',
  sourceIp: '10.244.0.2',
  method: 'GET',
  path: '/api/items',
  host: 'echo.shop:80',
  port: 80,
  headers: new Map([['x-team', ['blue']]]),
  ...over,
});

describe('L7 evaluation order (DENY first, no ALLOW → allow, ALLOW match → allow, else deny)', () => {
  const deny = policy('deny-delete', { action: 'DENY', rules: [{ to: [{ operation: { methods: ['DELETE'] } }] }] });
  const allow = policy('allow-client', {
    rules: [{ from: [{ source: { principals: ['cluster.local/ns/shop/sa/client'] } }] }],
  });
  const cases: [string, readonly ReturnType<typeof policy>[], Partial<L7RequestContext>, boolean, string | null][] = [
    ['no policy', [], {}, true, null],
    ['DENY matches', [deny], { method: 'DELETE' }, false, 'shop/deny-delete'],
    ['DENY does not match, no ALLOW', [deny], {}, true, null],
    ['ALLOW matches', [deny, allow], {}, true, 'shop/allow-client'],
    ['ALLOW does not match', [allow], { sourcePrincipal: 'spiffe://cluster.local/ns/other/sa/x' }, false, null],
    ['DENY beats ALLOW', [allow, deny], { method: 'DELETE' }, false, 'shop/deny-delete'],
    ['no identity never matches a principal', [allow], { sourcePrincipal: null }, false, null],
  ];
  for (const [what, policies, over, allowed, by] of cases) {
    it(what, () => {
      const v = evaluateL7(policies, ctx(over));
      assert.equal(v.allowed, allowed);
      assert.equal(v.policy, by);
    });
  }
});

describe('L7 match fields', () => {
  const table: [string, Record<string, unknown>, Partial<L7RequestContext>, boolean][] = [
    ['path prefix', { to: [{ operation: { paths: ['/api/*'] } }] }, {}, true],
    ['path exact miss', { to: [{ operation: { paths: ['/api'] } }] }, {}, false],
    ['notPaths', { to: [{ operation: { notPaths: ['/api/*'] } }] }, {}, false],
    ['method', { to: [{ operation: { methods: ['GET', 'HEAD'] } }] }, {}, true],
    ['host with port stripped', { to: [{ operation: { hosts: ['echo.shop'] } }] }, {}, true],
    ['host suffix', { to: [{ operation: { hosts: ['*.shop:80'] } }] }, {}, true],
    ['port', { to: [{ operation: { ports: ['8080'] } }] }, {}, false],
    ['namespace', { from: [{ source: { namespaces: ['shop'] } }] }, {}, true],
    ['notNamespaces', { from: [{ source: { notNamespaces: ['shop'] } }] }, {}, false],
    ['ipBlocks', { from: [{ source: { ipBlocks: ['10.244.0.0/16'] } }] }, {}, true],
    ['ipBlocks miss', { from: [{ source: { ipBlocks: ['10.0.0.1'] } }] }, {}, false],
    [
      'serviceAccounts: bare name is in the policy namespace',
      { from: [{ source: { serviceAccounts: ['client'] } }] },
      {},
      true,
    ],
    ['serviceAccounts: ns/name', { from: [{ source: { serviceAccounts: ['shop/client'] } }] }, {}, true],
    ['serviceAccounts: other namespace', { from: [{ source: { serviceAccounts: ['web/client'] } }] }, {}, false],
    [
      'serviceAccounts: plaintext has none',
      { from: [{ source: { serviceAccounts: ['client'] } }] },
      { sourcePrincipal: null },
      false,
    ],
    ['notServiceAccounts', { from: [{ source: { notServiceAccounts: ['shop/client'] } }] }, {}, false],
    [
      'serviceAccounts AND namespaces',
      { from: [{ source: { serviceAccounts: ['client'], namespaces: ['web'] } }] },
      {},
      false,
    ],
    [
      'remoteIpBlocks (no trusted X-Forwarded-For hop)',
      { from: [{ source: { remoteIpBlocks: ['10.244.0.0/16'] } }] },
      {},
      true,
    ],
    ['notRemoteIpBlocks', { from: [{ source: { notRemoteIpBlocks: ['10.244.0.2'] } }] }, {}, false],
    ['when header', { when: [{ key: 'request.headers[X-Team]', values: ['blue'] }] }, {}, true],
    ['when header notValues', { when: [{ key: 'request.headers[x-team]', notValues: ['blue'] }] }, {}, false],
    ['when source.ip CIDR', { when: [{ key: 'source.ip', values: ['10.244.0.0/24'] }] }, {}, true],
    ['when destination.port', { when: [{ key: 'destination.port', values: ['80'] }] }, {}, true],
    [
      'from AND to',
      { from: [{ source: { namespaces: ['shop'] } }], to: [{ operation: { methods: ['POST'] } }] },
      {},
      false,
    ],
    ['empty rule matches all', {}, {}, true],
  ];
  for (const [what, rule, over, matches] of table) {
    it(what, () => {
      const p = policy('p', { action: 'DENY', rules: [rule] });
      assert.equal(evaluateL7([p], ctx(over)).allowed, !matches);
    });
  }
  it('an ALLOW policy without rules allows nothing', () => {
    assert.equal(evaluateL7([policy('p', {})], ctx()).allowed, false);
  });
});

describe('targets and invalid policies', () => {
  it('a policy applies to its waypoint Gateway or the destination Service, in its namespace', () => {
    const svc = compileL7Policy({
      namespace: 'shop',
      name: 's',
      creationTimestampMs: null,
      sequence: 0,
      spec: { targetRefs: [{ kind: 'Service', group: '', name: 'echo' }], action: 'DENY', rules: [{}] },
    }).policy;
    const other = policy('o', { action: 'DENY', rules: [{}] }, 'elsewhere');
    assert.ok(svc);
    assert.equal(policiesFor([svc, other], WP, { namespace: 'shop', name: 'echo' }).length, 1);
    assert.equal(policiesFor([svc, other], WP, { namespace: 'shop', name: 'cart' }).length, 0);
  });
  const bad: [string, unknown, string][] = [
    ['CUSTOM action', { targetRefs: [gatewayRef], action: 'CUSTOM' }, 'FERRY_L7_POLICY_UNSUPPORTED'],
    ['no targetRefs', { action: 'DENY' }, 'FERRY_L7_POLICY_INVALID'],
    [
      'JWT principals',
      { targetRefs: [gatewayRef], rules: [{ from: [{ source: { requestPrincipals: ['*'] } }] }] },
      'FERRY_L7_POLICY_UNSUPPORTED',
    ],
    [
      'unknown when key',
      { targetRefs: [gatewayRef], rules: [{ when: [{ key: 'request.auth.claims[iss]', values: ['x'] }] }] },
      'FERRY_L7_POLICY_UNSUPPORTED',
    ],
    [
      'bad CIDR',
      { targetRefs: [gatewayRef], rules: [{ from: [{ source: { ipBlocks: ['10.0.0.0/99'] } }] }] },
      'FERRY_L7_POLICY_INVALID',
    ],
    [
      'bad port',
      { targetRefs: [gatewayRef], rules: [{ to: [{ operation: { ports: ['http'] } }] }] },
      'FERRY_L7_POLICY_INVALID',
    ],
    [
      'unknown source field (a typo must not widen or narrow the policy)',
      { targetRefs: [gatewayRef], rules: [{ from: [{ source: { principal: ['x'] } }] }] },
      'FERRY_L7_POLICY_INVALID',
    ],
    [
      'unknown operation field',
      { targetRefs: [gatewayRef], rules: [{ to: [{ operation: { method: ['GET'] } }] }] },
      'FERRY_L7_POLICY_INVALID',
    ],
    [
      'bad service account',
      { targetRefs: [gatewayRef], rules: [{ from: [{ source: { serviceAccounts: ['a/b/c'] } }] }] },
      'FERRY_L7_POLICY_INVALID',
    ],
    ['spec is a string', 'x', 'FERRY_L7_POLICY_INVALID'],
  ];
  for (const [what, spec, code] of bad) {
    it(`${what} → ${code}, not applied`, () => {
      const out = compileL7Policy({ namespace: 'shop', name: 'bad', creationTimestampMs: null, sequence: 0, spec });
      assert.equal(out.policy, null);
      assert.equal(out.problems[0]?.code, code);
    });
  }
});
