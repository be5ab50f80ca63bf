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
