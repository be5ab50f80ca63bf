import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../../src/kube/client.ts';
import { planReplicaSet } from '../../../../src/local-cluster/kube-controllers/replicaset-plan.ts';

const rs: Json = {
  metadata: { name: 'web-abc', namespace: 'default', uid: 'rs-uid', generation: 4 },
  spec: { replicas: 2, selector: { matchLabels: { app: 'web' } } },
};
const pod = (
  name: string,
  opts: { node?: string; ready?: boolean; phase?: string; created?: string; owner?: string; deleting?: boolean } = {},
): Json => ({
  metadata: {
    name,
    namespace: 'default',
    labels: { app: 'web' },
    creationTimestamp: opts.created ?? '2026-01-01T00:00:00Z',
    ownerReferences: [
      { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-abc', uid: opts.owner ?? 'rs-uid', controller: true },
    ],
    ...(opts.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:09Z' } : {}),
  },
  spec: opts.node === undefined ? {} : { nodeName: opts.node },
  status: {
    phase: opts.phase ?? 'Running',
    conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }],
  },
});

test('too few owned pods: creates the difference; pods of another owner do not count', () => {
  const plan = planReplicaSet(rs, [pod('a', { node: 'n' }), pod('other', { owner: 'x' })]);
  assert.equal(plan.create, 1);
  assert.deepEqual(plan.delete, []);
});

test('pods being deleted or finished do not count (a scale-down never deletes twice)', () => {
  const plan = planReplicaSet(rs, [
    pod('a', { node: 'n' }),
    pod('b', { node: 'n' }),
    pod('c', { deleting: true, node: 'n' }),
    pod('d', { phase: 'Succeeded', node: 'n' }),
  ]);
  assert.equal(plan.create, 0);
  assert.deepEqual(plan.delete, []);
  assert.equal(plan.status.replicas, 2);
});

test('too many: deletes unscheduled, then pending, then not ready, then the newest', () => {
  const pods = [
    pod('old-ready', { node: 'n', created: '2026-01-01T00:00:00Z' }),
    pod('new-ready', { node: 'n', created: '2026-01-01T00:05:00Z' }),
    pod('not-ready', { node: 'n', ready: false }),
    pod('pending', { node: 'n', phase: 'Pending', ready: false }),
    pod('unscheduled', { phase: 'Pending', ready: false }),
  ];
  assert.deepEqual(planReplicaSet({ ...rs, spec: { ...(rs.spec as Json), replicas: 1 } }, pods).delete, [
    'unscheduled',
    'pending',
    'not-ready',
    'new-ready',
  ]);
});

test('status counts replicas, ready and available pods, and the observed generation', () => {
  const plan = planReplicaSet(rs, [pod('a', { node: 'n' }), pod('b', { node: 'n', ready: false })]);
  assert.deepEqual(plan.status, {
    replicas: 2,
    fullyLabeledReplicas: 2,
    readyReplicas: 1,
    availableReplicas: 1,
    observedGeneration: 4,
  });
});
