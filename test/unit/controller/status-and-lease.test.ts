// Pure decisions of the Kubernetes controller: status merging and "no write when equal", conflict retries,
// the Lease state machine, and which informers discovery starts, stops or reports missing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffWatches, planWatches } from '../../../src/controller/sources/kube-resources.ts';
import {
  desiredStatuses,
  mergeConditions,
  planStatusWrite,
  shouldRetryStatusWrite,
  statusEqual,
} from '../../../src/controller/status/desired-status.ts';
import { decideLease, isLeading, type LeaseRecord, observe } from '../../../src/controller/status/lease.ts';
import { listPods, translateCluster } from '../../../src/controller/translate/translate.ts';
import { stateOf } from '../../helpers/controller-fixtures.ts';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:05:00Z';
const cond = (type: string, status: string, extra: Record<string, unknown> = {}) => ({
  type,
  status,
  reason: type,
  message: '',
  observedGeneration: 1,
  ...extra,
});

test('conditions: lastTransitionTime kept while the status is unchanged, now when it flips or is new', () => {
  const merged = mergeConditions(
    [cond('Accepted', 'True', { lastTransitionTime: T0 }), cond('ResolvedRefs', 'True', { lastTransitionTime: T0 })],
    [cond('Accepted', 'True'), cond('ResolvedRefs', 'False'), cond('PartiallyInvalid', 'True')],
    T1,
  );
  assert.deepEqual(
    merged.map((c) => [c.type, c.lastTransitionTime]),
    [
      ['Accepted', T0],
      ['ResolvedRefs', T1],
      ['PartiallyInvalid', T1],
    ],
  );
});

test('status equality ignores lastTransitionTime and key order, nothing else', () => {
  const cases: [string, unknown, unknown, boolean][] = [
    ['same', { conditions: [cond('A', 'True')] }, { conditions: [cond('A', 'True')] }, true],
    [
      'only times differ',
      { conditions: [cond('A', 'True', { lastTransitionTime: T0 })] },
      { conditions: [cond('A', 'True', { lastTransitionTime: T1 })] },
      true,
    ],
    ['key order', { a: 1, b: { c: 2, d: 3 } }, { b: { d: 3, c: 2 }, a: 1 }, true],
    ['status flips', { conditions: [cond('A', 'True')] }, { conditions: [cond('A', 'False')] }, false],
    [
      'generation moves',
      { conditions: [cond('A', 'True')] },
      { conditions: [cond('A', 'True', { observedGeneration: 2 })] },
      false,
    ],
    ['reason', { conditions: [cond('A', 'True')] }, { conditions: [cond('A', 'True', { reason: 'X' })] }, false],
  ];
  for (const [name, a, b, want] of cases) assert.equal(statusEqual(a, b), want, name);
});

test("planStatusWrite: no write when equal; a write keeps other controllers' parents and old transition times", () => {
  const mineRef = { kind: 'Service', name: 'echo' };
  const desired = {
    parents: [
      { parentRef: mineRef, controllerName: 'ferry.dev/waypoint-controller', conditions: [cond('Accepted', 'True')] },
    ],
  };
  const other = {
    parentRef: { name: 'gw' },
    controllerName: 'example.com/gateway',
    conditions: [cond('Accepted', 'True')],
  };
  const storedSame = {
    metadata: { resourceVersion: '7' },
    status: {
      parents: [other, { ...desired.parents[0], conditions: [cond('Accepted', 'True', { lastTransitionTime: T0 })] }],
    },
  };
  assert.deepEqual(planStatusWrite('HTTPRoute', storedSame, desired, T1), { write: false });
  const storedOld = { metadata: { resourceVersion: '8' }, status: { parents: [other] } };
  const plan = planStatusWrite('HTTPRoute', storedOld, desired, T1);
  assert.equal(plan.write, true);
  if (!plan.write) return;
  assert.equal(plan.resourceVersion, '8');
  const parents = plan.status.parents as { controllerName: string; conditions: { lastTransitionTime: string }[] }[];
  assert.deepEqual(
    parents.map((p) => p.controllerName),
    ['example.com/gateway', 'ferry.dev/waypoint-controller'],
  );
  assert.equal(parents[1]?.conditions[0]?.lastTransitionTime, T1);
  // Written once, the same desired status against what was written: no second write (no ping-pong).
  assert.deepEqual(
    planStatusWrite(
      'HTTPRoute',
      { metadata: { resourceVersion: '9' }, status: plan.status },
      desired,
      '2026-01-02T00:00:00Z',
    ),
    { write: false },
  );
  assert.deepEqual(planStatusWrite('HTTPRoute', undefined, desired, T1), { write: false }, 'deleted: nothing to write');
});

test('status write retries only on 409 Conflict, bounded', () => {
  const cases: [number, number, boolean][] = [
    [409, 0, true],
    [409, 3, true],
    [409, 4, false],
    [422, 0, false],
    [404, 0, false],
    [500, 0, false],
    [0, 0, false],
  ];
  for (const [status, attempt, want] of cases)
    assert.equal(shouldRetryStatusWrite(status, attempt), want, `${status}@${attempt}`);
});

test('desired statuses: HTTPRoute parents, waypoint Gateway Accepted/Programmed with its address, Ferry GatewayClass', () => {
  const { state } = stateOf(`apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ferry-waypoint}
spec: {controllerName: ferry.dev/waypoint-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/gw}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: demo, generation: 3}
spec: {gatewayClassName: ferry-waypoint, listeners: [{name: mesh, port: 15008, protocol: HBONE}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bad, namespace: demo}
spec: {gatewayClassName: ferry-waypoint, listeners: [{name: http, port: 80, protocol: HTTP}]}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec: {selector: {app: echo}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: demo, generation: 2}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules: [{backendRefs: [{name: echo, port: 80}, {name: missing, port: 80}]}]
`);
  const placement = new Map(listPods(state).map((p, i) => [p.key, { ip: `10.0.0.${i + 1}`, node: 'n' }]));
  const result = translateCluster(state, { placement, vips: new Map([['demo/echo', '10.96.0.1']]) });
  const d = desiredStatuses(state, result);
  const route = d.find((x) => x.kind === 'HTTPRoute');
  assert.ok(route);
  const parent = (
    route.status.parents as {
      controllerName: string;
      conditions: { type: string; status: string; reason: string; observedGeneration: number }[];
    }[]
  )[0];
  assert.equal(parent?.controllerName, 'ferry.dev/waypoint-controller');
  const resolved = parent?.conditions.find((c) => c.type === 'ResolvedRefs');
  assert.deepEqual([resolved?.status, resolved?.reason, resolved?.observedGeneration], ['False', 'BackendNotFound', 2]);
  const wp = d.find((x) => x.kind === 'Gateway' && x.name === 'wp');
  const wpConds = wp?.status.conditions as { type: string; status: string; observedGeneration: number }[];
  assert.deepEqual(
    wpConds.map((c) => [c.type, c.status, c.observedGeneration]),
    [
      ['Accepted', 'True', 3],
      ['Programmed', 'True', 3],
    ],
  );
  assert.deepEqual(wp?.status.addresses, [{ type: 'IPAddress', value: '10.0.0.1' }]);
  const bad = d.find((x) => x.kind === 'Gateway' && x.name === 'bad');
  assert.ok(bad);
  assert.deepEqual(
    (bad.status.conditions as { type: string; status: string; reason: string }[]).map((c) => [
      c.type,
      c.status,
      c.reason,
    ]),
    [
      ['Accepted', 'False', 'ListenersNotValid'],
      ['Programmed', 'False', 'Invalid'],
    ],
  );
  assert.deepEqual(
    d.filter((x) => x.kind === 'GatewayClass').map((x) => x.name),
    ['ferry-waypoint'],
  );
});

const rec = (holder: string | null, renew: string | null, transitions = 0): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: renew,
  renewTime: renew,
  leaseTransitions: transitions,
});

test('lease: create when absent, renew own, wait while the holder renews, acquire after the duration unchanged', () => {
  assert.equal(decideLease(null, null, 'a', 15, 0).action, 'create');
  assert.equal(decideLease({ record: rec('a', 'x'), resourceVersion: '1' }, null, 'a', 15, 0).action, 'renew');
  // b first sees a's record at t=0: it waits for 15 s of that record unchanged (by b's clock).
  const seen = { record: rec('a', 'x'), resourceVersion: '1' };
  const first = decideLease(seen, null, 'b', 15, 1000);
  assert.deepEqual(first, { action: 'wait', holder: 'a', expiresAtMs: 16_000 });
  const obs = observe(seen, null, 1000);
  assert.equal(decideLease(seen, obs, 'b', 15, 15_999).action, 'wait');
  const take = decideLease(seen, obs, 'b', 15, 16_000);
  assert.equal(take.action, 'acquire');
  if (take.action === 'acquire') {
    assert.equal(take.record.holderIdentity, 'b');
    assert.equal(take.record.leaseTransitions, 1);
    assert.equal(take.resourceVersion, '1', 'optimistic concurrency on what was read');
  }
  // a renewed meanwhile (record changed): the 15 s count restarts from when b saw the change.
  const renewed = { record: rec('a', 'y'), resourceVersion: '2' };
  assert.deepEqual(decideLease(renewed, obs, 'b', 15, 16_000), { action: 'wait', holder: 'a', expiresAtMs: 31_000 });
  // Released (holder cleared on graceful shutdown): acquired at once.
  assert.equal(decideLease({ record: rec(null, null, 4), resourceVersion: '3' }, null, 'b', 15, 0).action, 'acquire');
  // Leading only while renewals succeed within the duration.
  assert.equal(isLeading(1000, 15, 15_999), true);
  assert.equal(isLeading(1000, 15, 16_000), false);
  assert.equal(isLeading(null, 15, 0), false);
});

test('discovery: v1 preferred, v1beta1 when only it is served, missing reported once, CRD removal stops', () => {
  const served = new Map([
    ['v1', new Set(['namespaces', 'pods', 'services', 'serviceaccounts', 'nodes'])],
    ['discovery.k8s.io/v1', new Set(['endpointslices'])],
    ['gateway.networking.k8s.io/v1', new Set(['gateways', 'httproutes', 'gatewayclasses'])],
    ['gateway.networking.k8s.io/v1beta1', new Set(['gateways', 'referencegrants'])],
  ]);
  const plan = planWatches(served);
  assert.equal(plan.get('Gateway'), 'v1');
  assert.equal(plan.get('ReferenceGrant'), 'v1beta1');
  assert.equal(plan.get('AuthorizationPolicy'), null);
  const first = diffWatches(new Map(), plan, new Set());
  assert.ok(first.some((a) => a.action === 'report-missing' && a.kind === 'AuthorizationPolicy'));
  assert.ok(first.some((a) => a.action === 'start' && a.kind === 'ReferenceGrant' && a.version === 'v1beta1'));
  const running = new Map(first.flatMap((a) => (a.action === 'start' ? [[a.kind, a.version] as const] : [])));
  const reported = new Set(first.flatMap((a) => (a.action === 'report-missing' ? [a.kind] : [])));
  assert.deepEqual([...reported], ['AuthorizationPolicy', 'PeerAuthentication', 'GRPCRoute', 'TCPRoute']);
  const again = diffWatches(running, plan, reported);
  assert.deepEqual(again, [], 'nothing new: nothing to do, nothing reported twice');
  // ReferenceGrant v1 appears: switch; HTTPRoute CRD removed: stop and report.
  const next = new Map(served);
  next.set('gateway.networking.k8s.io/v1', new Set(['gateways', 'gatewayclasses', 'referencegrants']));
  const changes = diffWatches(running, planWatches(next), reported);
  assert.deepEqual(changes, [
    { action: 'stop', kind: 'HTTPRoute' },
    { action: 'report-missing', kind: 'HTTPRoute' },
    { action: 'switch', kind: 'ReferenceGrant', version: 'v1' },
  ]);
});
