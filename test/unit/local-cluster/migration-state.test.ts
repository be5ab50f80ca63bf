import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { enrollmentPaths } from '../../../src/local-cluster/controller/enrollment.ts';
import { ClusterError } from '../../../src/local-cluster/errors.ts';
import {
  MIGRATION_FILE,
  podPhase,
  readMigrationPhases,
  recordPodPhase,
} from '../../../src/local-cluster/migration-state.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync('/tmp/ferrytest-migration-state-');
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('no migration.json: a pod created with a sidecar is on it, any other pod follows its labels', (t) => {
  const phases = readMigrationPhases(tmp(t));
  assert.equal(phases.size, 0);
  assert.equal(podPhase(phases, { namespace: 'shop', name: 'a', sidecar: true }), 'sidecar');
  assert.equal(podPhase(phases, { namespace: 'shop', name: 'b' }), 'ambient');
});

test('recorded phases are read back, per pod, and a later record replaces an earlier one', async (t) => {
  const dir = tmp(t);
  await recordPodPhase(dir, 'shop', 'a', 'handover');
  await recordPodPhase(dir, 'shop', 'b', 'ambient');
  await recordPodPhase(dir, 'shop', 'a', 'ambient');
  const phases = readMigrationPhases(dir);
  assert.equal(podPhase(phases, { namespace: 'shop', name: 'a', sidecar: true }), 'ambient');
  assert.equal(podPhase(phases, { namespace: 'shop', name: 'b', sidecar: true }), 'ambient');
  assert.equal(podPhase(phases, { namespace: 'other', name: 'a', sidecar: true }), 'sidecar');
});

test('a damaged migration.json is an error naming the file, never a guess', (t) => {
  for (const body of ['{', '{"pods": []}', '{"pods": {"shop/a": "half"}}']) {
    const dir = tmp(t);
    writeFileSync(join(dir, MIGRATION_FILE), body);
    assert.throws(
      () => readMigrationPhases(dir),
      (e: unknown) =>
        e instanceof ClusterError && e.code === 'FERRY_CLUSTER_MIGRATION_STATE_CORRUPT' && e.message.includes(dir),
    );
  }
});

test('the node enrolls a sidecar pod only in handover or ambient phase', () => {
  const pod = { netnsPath: '/run/netns/p', cgroupDir: '/sys/fs/cgroup/p', sidecar: true };
  assert.equal(enrollmentPaths(pod), undefined);
  assert.equal(enrollmentPaths(pod, 'sidecar'), undefined);
  assert.deepEqual(enrollmentPaths(pod, 'handover'), { netnsPath: '/run/netns/p', cgroupPath: '/sys/fs/cgroup/p' });
  assert.deepEqual(enrollmentPaths(pod, 'ambient'), { netnsPath: '/run/netns/p', cgroupPath: '/sys/fs/cgroup/p' });
  assert.deepEqual(enrollmentPaths({ ...pod, sidecar: false }), {
    netnsPath: '/run/netns/p',
    cgroupPath: '/sys/fs/cgroup/p',
  });
  assert.equal(enrollmentPaths(undefined, 'ambient'), undefined);
});
