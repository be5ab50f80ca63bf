import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../../../../src/kube/client.ts';
import {
  planDeployment,
  resolveIntOrPercent,
  rollingNewReplicas,
} from '../../../../src/local-cluster/kube-controllers/deployment-plan.ts';
import {
  POD_TEMPLATE_HASH,
  templateHash,
  withTemplateLabel,
} from '../../../../src/local-cluster/kube-controllers/pod-template.ts';

const NOW = '2026-01-01T00:00:00Z';
const template = (image: string): Json => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'web', image }] },
});
const dep = (image: string, replicas = 3, extra: Json = {}): Json => ({
  metadata: { name: 'web', namespace: 'default', uid: 'dep-uid', generation: 2 },
  spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: template(image), ...extra },
});
const rs = (image: string, replicas: number, available: number, revision: string, created: string): Json => {
  const hash = templateHash(template(image));
  return {
    metadata: {
      name: `web-${hash}`,
      namespace: 'default',
      creationTimestamp: created,
      annotations: { 'deployment.kubernetes.io/revision': revision },
    },
    spec: { replicas, template: withTemplateLabel(template(image), POD_TEMPLATE_HASH, hash) },
    status: { replicas, readyReplicas: available, availableReplicas: available },
  };
};

test('a new Deployment gets a ReplicaSet <name>-<hash> with the hash label, owner reference and revision 1', () => {
  const plan = planDeployment(dep('v1'), [], [], NOW);
  const created = plan.create as Json;
  const hash = templateHash(template('v1'));
  assert.equal((created.metadata as Json).name, `web-${hash}`);
  assert.equal(((created.metadata as Json).annotations as Json)['deployment.kubernetes.io/revision'], '1');
  assert.deepEqual(((created.spec as Json).selector as Json).matchLabels, { app: 'web', [POD_TEMPLATE_HASH]: hash });
  assert.equal((created.spec as Json).replicas, 3);
  assert.equal((((created.metadata as Json).ownerReferences as Json[])[0] as Json).uid, 'dep-uid');
  assert.equal(plan.revision, '1');
});

test('the template hash ignores key order and the hash label, and changes with the template', () => {
  const a = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ image: 'x', name: 'web' }] } };
  const b = {
    spec: { containers: [{ name: 'web', image: 'x' }] },
    metadata: { labels: { app: 'web', [POD_TEMPLATE_HASH]: 'zz' } },
  };
  assert.equal(templateHash(a), templateHash(b));
  assert.notEqual(templateHash(a), templateHash(template('y')));
  assert.match(templateHash(a), /^[bcdfghjklmnpqrstvwxz2456789]+$/);
});

test('rolling update: the new ReplicaSet first grows within maxSurge, old ones wait for the next pass', () => {
  const old = rs('v1', 3, 3, '1', '2026-01-01T00:00:00Z');
  const plan = planDeployment(dep('v2'), [old], [], NOW);
  assert.equal((plan.create as Json).spec && ((plan.create as Json).spec as Json).replicas, 1); // 3 + 25% surge (1) - 3
  assert.equal(plan.revision, '2');
  assert.deepEqual(plan.scale, []);
});

test('rolling update: old ReplicaSets shrink only while available pods stay ≥ replicas - maxUnavailable', () => {
  const old = rs('v1', 3, 3, '1', '2026-01-01T00:00:00Z');
  const fresh = rs('v2', 1, 0, '2', '2026-01-01T00:01:00Z');
  // new pod not available yet: total 4, minAvailable 3 (maxUnavailable 0 of 3 rounds down), 1 unavailable → none
  assert.deepEqual(planDeployment(dep('v2'), [old, fresh], [], NOW).scale, []);
  const freshReady = rs('v2', 1, 1, '2', '2026-01-01T00:01:00Z');
  assert.deepEqual(planDeployment(dep('v2'), [old, freshReady], [], NOW).scale, [
    { name: old.metadata && (old.metadata as Json).name, replicas: 2 },
  ]);
});

test('kubectl scale: the sole ReplicaSet follows spec.replicas both ways', () => {
  const only = rs('v1', 3, 3, '1', '2026-01-01T00:00:00Z');
  assert.deepEqual(planDeployment(dep('v1', 1), [only], [], NOW).scale, [
    { name: (only.metadata as Json).name, replicas: 1 },
  ]);
  assert.deepEqual(planDeployment(dep('v1', 5), [only], [], NOW).scale, [
    { name: (only.metadata as Json).name, replicas: 5 },
  ]);
});

test('status: rollout status sees updated/available replicas, observedGeneration and Progressing', () => {
  const done = planDeployment(dep('v1'), [rs('v1', 3, 3, '1', NOW)], [], NOW).status;
  assert.equal(done.observedGeneration, 2);
  assert.equal(done.updatedReplicas, 3);
  assert.equal(done.availableReplicas, 3);
  const progressing = (done.conditions as Json[]).find((c) => c.type === 'Progressing');
  assert.equal(progressing?.reason, 'NewReplicaSetAvailable');
  const midway = planDeployment(dep('v2'), [rs('v1', 3, 3, '1', NOW), rs('v2', 1, 0, '2', NOW)], [], NOW).status;
  assert.equal(midway.replicas, 4);
  assert.equal(midway.updatedReplicas, 1);
});

test('Recreate: old ReplicaSets go to 0 first, the new one grows once their pods are gone', () => {
  const recreate = { strategy: { type: 'Recreate' } };
  const old = rs('v1', 3, 3, '1', NOW);
  const first = planDeployment(dep('v2', 3, recreate), [old], [], NOW);
  assert.equal(((first.create as Json).spec as Json).replicas, 0);
  assert.deepEqual(first.scale, [{ name: (old.metadata as Json).name, replicas: 0 }]);
});

test('maxSurge/maxUnavailable: numbers, percentages rounded up (surge) and down (unavailable)', () => {
  assert.equal(resolveIntOrPercent(undefined, 3, true, '25%'), 1);
  assert.equal(resolveIntOrPercent(undefined, 3, false, '25%'), 0);
  assert.equal(resolveIntOrPercent(2, 3, true, '25%'), 2);
  assert.equal(rollingNewReplicas(3, 0, 3, 1), 1);
  assert.equal(rollingNewReplicas(3, 1, 3, 1), 1);
  assert.equal(rollingNewReplicas(3, 3, 0, 1), 3);
});
