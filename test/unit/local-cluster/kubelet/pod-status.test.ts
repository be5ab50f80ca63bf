import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ContainerView, podPhase, podStatus } from '../../../../src/local-cluster/kubelet/pod-status.ts';

const T0 = '2026-01-01T00:00:00Z';
const T1 = '2026-01-01T00:01:00Z';
const running = (ready: boolean, restartCount = 0): ContainerView => ({
  name: 'app',
  image: 'ferry/echo',
  containerId: 'containerd://x',
  state: { kind: 'running', startedAt: T0 },
  lastTermination: null,
  ready,
  restartCount,
});
const exited = (exitCode: number, willRestart: boolean): ContainerView => ({
  ...running(false),
  state: { kind: 'terminated', exitCode, startedAt: T0, finishedAt: T1, willRestart },
});
const view = (containers: ContainerView[]) => ({
  podIp: '10.244.0.2',
  hostIp: '127.0.0.1',
  qosClass: 'BestEffort' as const,
  startTime: T0,
  sandboxReady: true,
  containers,
});

test('phase: Running while a container runs; Succeeded/Failed once all exited for good', () => {
  assert.equal(podPhase([running(false)]), 'Running');
  assert.equal(podPhase([exited(0, false), exited(0, false)]), 'Succeeded');
  assert.equal(podPhase([exited(0, false), exited(2, false)]), 'Failed');
  assert.equal(podPhase([{ ...running(false), state: { kind: 'waiting', reason: 'ContainerCreating' } }]), 'Pending');
  assert.equal(podPhase([{ ...running(false, 3), state: { kind: 'waiting', reason: 'CrashLoopBackOff' } }]), 'Running');
});

test('Ready and ContainersReady follow the containers; IPs, QoS and restart counts are reported', () => {
  const s = podStatus(view([running(true, 2)]), {}, T1);
  const conditions = s.conditions as { type: string; status: string }[];
  assert.equal(conditions.find((c) => c.type === 'Ready')?.status, 'True');
  assert.equal(conditions.find((c) => c.type === 'ContainersReady')?.status, 'True');
  assert.equal(s.podIP, '10.244.0.2');
  assert.deepEqual(s.podIPs, [{ ip: '10.244.0.2' }]);
  assert.equal(s.qosClass, 'BestEffort');
  assert.equal((s.containerStatuses as { restartCount: number }[])[0]?.restartCount, 2);
  const notReady = podStatus(view([running(false)]), {}, T1);
  assert.equal(
    (notReady.conditions as { type: string; status: string }[]).find((c) => c.type === 'Ready')?.status,
    'False',
  );
});

test('an unchanged pod gets an identical status (transition times kept): no write needed', () => {
  const first = podStatus(view([running(true)]), {}, T0);
  const again = podStatus(view([running(true)]), first, T1);
  assert.deepEqual(again, first);
});
