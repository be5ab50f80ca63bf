import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../../src/kube/client.ts';
import { planScheduling } from '../../../../src/local-cluster/kube-controllers/scheduler.ts';

const node = (name: string, labels: Record<string, string> = {}, ready = true): Json => ({
  metadata: { name, labels },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const pod = (name: string, spec: Json = {}, created = '2026-01-01T00:00:00Z'): Json => ({
  metadata: { name, namespace: 'default', creationTimestamp: created },
  spec,
  status: { phase: 'Pending' },
});

test('unbound pods go to the Ready node with the fewest pods, counting each placement', () => {
  const plan = planScheduling(
    [pod('a'), pod('b'), pod('c'), pod('bound', { nodeName: 'node-0' })],
    [node('node-0'), node('node-1')],
  );
  assert.deepEqual(
    plan.bindings.map((b) => `${b.pod}→${b.node}`),
    ['a→node-1', 'b→node-0', 'c→node-1'],
  );
});

test('nodeSelector is honoured; no fitting node leaves the pod unschedulable', () => {
  const nodes = [node('node-0', { disk: 'ssd' }), node('node-1')];
  const plan = planScheduling(
    [pod('ssd', { nodeSelector: { disk: 'ssd' } }), pod('gpu', { nodeSelector: { gpu: 'yes' } })],
    nodes,
  );
  assert.deepEqual(plan.bindings, [{ namespace: 'default', pod: 'ssd', node: 'node-0' }]);
  assert.deepEqual(plan.unschedulable, ['default/gpu']);
});

test('NotReady nodes, bound, deleting and finished pods are left alone', () => {
  const deleting = { ...pod('d'), metadata: { name: 'd', namespace: 'default', deletionTimestamp: 'x' } };
  const done = { ...pod('done'), status: { phase: 'Succeeded' } };
  const plan = planScheduling([deleting, done, pod('x')], [node('node-0', {}, false), node('node-1')]);
  assert.deepEqual(plan.bindings, [{ namespace: 'default', pod: 'x', node: 'node-1' }]);
});

test('pods of one app spread over nodes before the total count decides (the echo versions apart)', () => {
  const withApp = (name: string, app: string, extra: Json = {}, created = '2026-01-01T00:00:00Z'): Json => ({
    ...pod(name, extra, created),
    metadata: { name, namespace: 'demo', creationTimestamp: created, labels: { app } },
  });
  // node-1 already runs more pods, but node-0 runs an echo: the second echo still goes to node-1.
  const plan = planScheduling(
    [
      withApp('echo-v1', 'echo', { nodeName: 'node-0' }),
      withApp('client', 'client', { nodeName: 'node-1' }),
      withApp('outsider', 'outsider', { nodeName: 'node-1' }),
      withApp('echo-v2', 'echo'),
      withApp('db', 'db', {}, '2026-01-01T00:00:01Z'),
    ],
    [node('node-0'), node('node-1')],
  );
  assert.deepEqual(
    plan.bindings.map((b) => `${b.pod}→${b.node}`),
    ['echo-v2→node-1', 'db→node-0'],
  );
  // The same app name in another namespace is another group: echo-b goes by the total count (node-0).
  const inShop = (name: string, app: string, spec: Json = {}): Json => ({
    ...pod(name, spec),
    metadata: { name, namespace: 'shop', creationTimestamp: '2026-01-01T00:00:00Z', labels: { app } },
  });
  const other = planScheduling(
    [
      withApp('echo-a', 'echo', { nodeName: 'node-0' }),
      inShop('x', 'x', { nodeName: 'node-1' }),
      inShop('y', 'y', { nodeName: 'node-1' }),
      inShop('echo-b', 'echo'),
    ],
    [node('node-0'), node('node-1')],
  );
  assert.deepEqual(
    other.bindings.map((b) => `${b.pod}→${b.node}`),
    ['echo-b→node-0'],
  );
});
