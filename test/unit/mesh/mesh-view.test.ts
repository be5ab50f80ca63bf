// MeshView indexing: lookups by uid/address/VIP/key, endpoints derived from Workload.services, policy scoping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Authorization, Workload } from '../../../src/mesh/types.ts';
import { keyOf, meshView, policy, service, workload } from '../../helpers/mesh-builders.ts';

const echo = service('echo', '10.96.0.10', { ports: { 80: 8080 } });
const echoA = workload('echo-a', ['10.244.0.5', 'fd00::5'], { services: { [keyOf(echo)]: { 80: 8080 } } });
const echoB = workload('echo-b', '10.244.1.6', { node: 'node-b', services: { [keyOf(echo)]: { 80: 8080 } } });
const sleep = workload('sleep', '10.244.0.7', { namespace: 'apps' });

test('workloads are found by uid and by each of their addresses on their network', () => {
  const v = meshView({ workloads: [echoA, echoB, sleep], services: [echo] });
  assert.equal(v.workloadByUid(echoA.uid), echoA);
  assert.equal(v.workloadByAddress('', '10.244.0.5'), echoA);
  assert.equal(v.workloadByAddress('', 'fd00::5'), echoA);
  assert.equal(v.workloadByAddress('other-net', '10.244.0.5'), undefined);
  assert.equal(v.workloadByAddress('', '10.244.9.9'), undefined);
});

test('services are found by VIP and by ns/hostname; endpoints come from Workload.services', () => {
  const v = meshView({ workloads: [echoA, echoB, sleep], services: [echo] });
  assert.equal(v.serviceByVip('', '10.96.0.10'), echo);
  assert.equal(v.serviceByKey('default/echo.default.svc.cluster.local'), echo);
  assert.deepEqual(
    v.endpointsOf(echo).map((e) => e.workload.name),
    ['echo-a', 'echo-b'],
  );
  assert.equal(v.endpointsOf(keyOf(echo)).length, 2);
  assert.deepEqual(v.servicesOf(echoA), [echo]);
  assert.deepEqual(v.servicesOf(sleep), []);
});

test('endpoints of a service that has not arrived yet are kept for when it does', () => {
  const v = meshView({ workloads: [echoA] });
  assert.equal(v.serviceByKey(keyOf(echo)), undefined);
  assert.equal(v.endpointsOf(keyOf(echo)).length, 1);
});

test('workloadsOnNode lists the workloads scheduled on a node', () => {
  const v = meshView({ workloads: [echoA, echoB, sleep] });
  assert.deepEqual(
    v.workloadsOnNode('node-a').map((w) => w.name),
    ['echo-a', 'sleep'],
  );
  assert.deepEqual(
    v.workloadsOnNode('node-b').map((w) => w.name),
    ['echo-b'],
  );
  assert.deepEqual(v.workloadsOnNode('node-z'), []);
});

// policiesFor scoping: one table, one helper.
const nsDefault = policy('ns-default', { namespace: 'default', scope: 'Namespace' });
const nsApps = policy('ns-apps', { namespace: 'apps', scope: 'Namespace' });
const global = policy('global', { namespace: 'istio-system', scope: 'Global' });
const selector = policy('selector', { namespace: 'default', scope: 'WorkloadSelector' });
const otherSelector = policy('other-selector', { namespace: 'default', scope: 'WorkloadSelector' });

const policyCases: {
  name: string;
  target: Workload;
  policies: Authorization[];
  expected: string[];
  warnings?: RegExp[];
}[] = [
  { name: 'no policies at all', target: sleep, policies: [], expected: [] },
  {
    name: 'namespace policy applies only in its namespace',
    target: workload('p', '10.0.0.1', { namespace: 'default' }),
    policies: [nsDefault, nsApps],
    expected: ['ns-default'],
  },
  {
    name: 'global policy applies everywhere',
    target: workload('p', '10.0.0.1', { namespace: 'apps' }),
    policies: [nsDefault, nsApps, global],
    expected: ['ns-apps', 'global'],
  },
  {
    name: 'selector policy applies only to workloads that reference it',
    target: workload('p', '10.0.0.1', { authorizationPolicies: ['default/selector'] }),
    policies: [nsDefault, global, selector, otherSelector],
    expected: ['ns-default', 'global', 'selector'],
  },
  {
    name: 'unknown selector key is skipped and warned about',
    target: workload('p', '10.0.0.1', { authorizationPolicies: ['default/missing', 'default/selector'] }),
    policies: [selector],
    expected: ['selector'],
    warnings: [/references unknown policy default\/missing/],
  },
  {
    name: 'a namespace policy referenced by key is not applied twice or across namespaces',
    target: workload('p', '10.0.0.1', {
      namespace: 'default',
      authorizationPolicies: ['apps/ns-apps', 'default/ns-default'],
    }),
    policies: [nsDefault, nsApps],
    expected: ['ns-default'],
    warnings: [/Namespace policy apps\/ns-apps/, /Namespace policy default\/ns-default/],
  },
  {
    name: 'duplicate selector references count once',
    target: workload('p', '10.0.0.1', { authorizationPolicies: ['default/selector', 'default/selector'] }),
    policies: [selector],
    expected: ['selector'],
  },
];

for (const c of policyCases) {
  test(`policiesFor: ${c.name}`, () => {
    const v = meshView({ workloads: [c.target], policies: c.policies });
    assert.deepEqual(
      v.policiesFor(c.target).map((p) => p.name),
      c.expected,
    );
    // Asking twice gives the same answer (memoized per view).
    assert.deepEqual(v.policiesFor(c.target), v.policiesFor(c.target));
    for (const re of c.warnings ?? []) {
      assert.ok(
        v.warnings.some((w) => re.test(w)),
        `expected a warning matching ${re}, got ${JSON.stringify(v.warnings)}`,
      );
    }
    if (c.warnings === undefined) assert.deepEqual(v.warnings, []);
  });
}

test('policiesFor works for a workload not in the view (e.g. held from an older view)', () => {
  const v = meshView({ policies: [nsDefault, selector] });
  const stranger = workload('gone', '10.9.9.9', { authorizationPolicies: ['default/selector'] });
  assert.deepEqual(
    v.policiesFor(stranger).map((p) => p.name),
    ['ns-default', 'selector'],
  );
});

test('duplicates resolve last-wins and are reported', () => {
  const first = workload('dup', '10.0.0.1');
  const second = workload('dup', '10.0.0.2');
  const squatter = workload('squatter', '10.0.0.2');
  const v = meshView({
    workloads: [first, second, squatter],
    services: [echo, service('echo', '10.96.0.11'), service('other', '10.96.0.11')],
    policies: [nsDefault, policy('ns-default', { action: 'Deny' })],
  });
  assert.equal(v.workloadByUid(first.uid), second);
  // The replaced workload's address is gone with it.
  assert.equal(v.workloadByAddress('', '10.0.0.1'), undefined);
  assert.equal(v.workloadByAddress('', '10.0.0.2'), squatter);
  assert.equal(v.serviceByVip('', '10.96.0.10'), undefined);
  assert.equal(v.serviceByVip('', '10.96.0.11')?.name, 'other');
  assert.equal(v.policyByKey('default/ns-default')?.action, 'Deny');
  assert.equal(v.policiesFor(squatter).length, 1);
  assert.equal(v.warnings.length, 5, JSON.stringify(v.warnings));
});

test('dump is JSON-serializable, sorted, and shows identities and port maps', () => {
  const v = meshView({ workloads: [echoB, echoA], services: [echo], policies: [global] }, 7);
  const round = JSON.parse(JSON.stringify(v.dump()));
  assert.equal(round.version, 7);
  assert.deepEqual(
    round.workloads.map((w: { name: string }) => w.name),
    ['echo-a', 'echo-b'],
  );
  assert.equal(round.workloads[0].identity, 'spiffe://cluster.local/ns/default/sa/echo-a');
  assert.deepEqual(round.workloads[0].services, { 'default/echo.default.svc.cluster.local': { 80: 8080 } });
  assert.equal(round.services[0].hostname, 'echo.default.svc.cluster.local');
  assert.equal(round.policies[0].name, 'global');
});
