import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { shouldRestart } from '../../../../src/local-cluster/kubelet/container-sync.ts';
import { KubeletStateWriter, loadKubeletState } from '../../../../src/local-cluster/kubelet/kubelet-state.ts';
import type { RuntimePod } from '../../../../src/local-cluster/kubelet/pod-runtime.ts';
import { graceSecondsOf, podContainers, restartPolicyOf } from '../../../../src/local-cluster/kubelet/pod-spec.ts';

const FERRY: [string, ...string[]] = ['node', 'main.ts'];
const WHERE = { podIp: '10.1.0.2', hostIp: '10.1.0.1', nodeName: 'node-0', stateDir: '/state' };

test('containers: image → command, env with a fieldRef, readiness ports from containerPorts and probes', () => {
  const r = podContainers(
    {
      spec: {
        containers: [
          {
            name: 'web',
            image: 'ferry/echo',
            ports: [{ containerPort: 8080 }, { containerPort: 53, protocol: 'UDP' }],
            readinessProbe: { tcpSocket: { port: 9090 } },
            env: [
              { name: 'A', value: '1' },
              { name: 'B', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
            ],
          },
        ],
      },
    },
    FERRY,
    WHERE,
  );
  assert.ok(r.ok);
  const [c] = r.containers;
  assert.deepEqual(c?.argv, ['node', 'main.ts', 'testapp', 'http-echo', '--port', '8080']);
  // The automounted in-cluster files: where the container finds them (no uid here, hence the empty segment).
  assert.deepEqual(c?.env, { A: '1', B: 'node-0', FERRY_SERVICEACCOUNT_DIR: '/state/pods/volumes/kube-api-access' });
  assert.deepEqual(c?.readinessPorts, [8080, 9090]);
});

test('an image without a stand-in and without a command names the container', () => {
  const r = podContainers({ spec: { containers: [{ name: 'db', image: 'postgres:16' }] } }, FERRY, WHERE);
  assert.equal(r.ok, false);
  assert.equal(r.ok ? '' : r.container, 'db');
});

test('restart policy and grace period: Kubernetes defaults', () => {
  assert.equal(restartPolicyOf({ spec: {} }), 'Always');
  assert.equal(restartPolicyOf({ spec: { restartPolicy: 'OnFailure' } }), 'OnFailure');
  assert.equal(graceSecondsOf({ spec: {} }), 30);
  assert.equal(graceSecondsOf({ spec: { terminationGracePeriodSeconds: 5 } }), 5);
  assert.equal(
    graceSecondsOf({ metadata: { deletionGracePeriodSeconds: 0 }, spec: { terminationGracePeriodSeconds: 5 } }),
    0,
  );
  assert.equal(shouldRestart('Always', 0), true);
  assert.equal(shouldRestart('OnFailure', 0), false);
  assert.equal(shouldRestart('OnFailure', 3), true);
  assert.equal(shouldRestart('Never', 3), false);
});

test('the kubelet record round-trips, creating entries included (a restarted kubelet tears those down)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-kubelet-state-'));
  try {
    const pod: RuntimePod = {
      uid: 'u1',
      namespace: 'default',
      name: 'web',
      phase: 'creating',
      qos: 'BestEffort',
      sliceDir: '/sys/fs/cgroup/x',
      hostNetwork: false,
      netnsName: 'ferry-c_default_web',
      netnsPath: '/run/netns/ferry-c_default_web',
      ip: '10.244.0.2',
      hostNumber: 2,
      startTime: '2026-01-01T00:00:00Z',
      sandbox: null,
      containers: [],
    };
    const writer = new KubeletStateWriter(dir, 'node-0');
    await writer.save([pod]);
    await writer.save([pod, { ...pod, uid: 'u2', phase: 'running' }]);
    assert.deepEqual(
      loadKubeletState(dir, 'node-0').map((p) => `${p.uid}:${p.phase}`),
      ['u1:creating', 'u2:running'],
    );
    assert.deepEqual(loadKubeletState(dir, 'node-1'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
