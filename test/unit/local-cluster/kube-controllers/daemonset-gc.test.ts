import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../../src/kube/client.ts';
import { planDaemonSet } from '../../../../src/local-cluster/kube-controllers/daemonset-plan.ts';
import { planGarbageCollection } from '../../../../src/local-cluster/kube-controllers/garbage-collector.ts';
import { CONTROLLER_REVISION_HASH, templateHash } from '../../../../src/local-cluster/kube-controllers/pod-template.ts';

const template: Json = {
  metadata: { labels: { app: 'agent' } },
  spec: { containers: [{ name: 'a', image: 'debian' }] },
};
const ds: Json = {
  metadata: { name: 'agent', namespace: 'default', uid: 'ds-uid', generation: 1 },
  spec: { selector: { matchLabels: { app: 'agent' } }, template },
};
const node = (name: string, labels: Record<string, string> = {}): Json => ({ metadata: { name, labels } });
const pod = (name: string, nodeName: string, hash: string, ready = true): Json => ({
  metadata: {
    name,
    namespace: 'default',
    labels: { app: 'agent', [CONTROLLER_REVISION_HASH]: hash },
    ownerReferences: [{ kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true }],
  },
  spec: { nodeName },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});

test('DaemonSet: one pod per node, bound directly to it', () => {
  const plan = planDaemonSet(ds, [node('node-0'), node('node-1')], [pod('p0', 'node-0', templateHash(template))]);
  assert.equal(plan.create.length, 1);
  assert.equal(((plan.create[0] ?? {}).spec as Json).nodeName, 'node-1');
  assert.deepEqual(plan.delete, []);
  assert.equal(plan.status.desiredNumberScheduled, 2);
  assert.equal(plan.status.currentNumberScheduled, 1);
});

test('DaemonSet: nodeSelector limits the nodes; pods on other nodes go', () => {
  const selective = {
    ...ds,
    spec: {
      ...(ds.spec as Json),
      template: { ...template, spec: { ...(template.spec as Json), nodeSelector: { role: 'edge' } } },
    },
  };
  const hash = templateHash((selective.spec as Json).template);
  const plan = planDaemonSet(
    selective,
    [node('node-0', { role: 'edge' }), node('node-1')],
    [pod('p0', 'node-0', hash), pod('p1', 'node-1', hash)],
  );
  assert.deepEqual(plan.create, []);
  assert.deepEqual(plan.delete, ['p1']);
});

test('DaemonSet rolling update: one outdated pod at a time, only while all others are available', () => {
  const pods = [pod('p0', 'node-0', 'old'), pod('p1', 'node-1', 'old')];
  const plan = planDaemonSet(ds, [node('node-0'), node('node-1')], pods);
  assert.equal(plan.delete.length, 1);
  const oneDown = planDaemonSet(ds, [node('node-0'), node('node-1')], [pod('p1', 'node-1', 'old')]);
  assert.deepEqual(oneDown.delete, [], 'node-0 has no pod: no second one is taken down');
  assert.equal(oneDown.create.length, 1);
});

test('garbage collection: ReplicaSets and pods whose controller owner is gone', () => {
  const owned = (name: string, kind: string, uid: string): Json => ({
    metadata: { name, namespace: 'default', ownerReferences: [{ kind, name: 'x', uid, controller: true }] },
  });
  const orphans = planGarbageCollection(
    {
      replicaSets: [owned('rs-live', 'Deployment', 'd1'), owned('rs-orphan', 'Deployment', 'gone')],
      pods: [
        owned('p-live', 'ReplicaSet', 'r1'),
        owned('p-orphan', 'ReplicaSet', 'gone'),
        owned('p-job', 'Job', 'gone'),
        { metadata: { name: 'bare' } },
      ],
    },
    [{ metadata: { uid: 'd1' } }, { metadata: { uid: 'r1' } }],
  );
  assert.deepEqual(
    orphans.map((o) => `${o.kind}/${o.name}`),
    ['ReplicaSet/rs-orphan', 'Pod/p-orphan'],
  );
});
