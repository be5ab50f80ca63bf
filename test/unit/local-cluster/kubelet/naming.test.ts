import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bridgePortName,
  containerScopeName,
  lowestFreeHost,
  nodeIndexOf,
  podSlicePath,
} from '../../../../src/local-cluster/kubelet/naming.ts';

const UID = '1557d63e-edcc-4fe3-8f34-34702a0d50f2';

test('pod slices are named and nested as the systemd cgroup driver does', () => {
  assert.equal(
    podSlicePath('BestEffort', UID),
    'kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1557d63e_edcc_4fe3_8f34_34702a0d50f2.slice',
  );
  assert.equal(
    podSlicePath('Burstable', UID),
    'kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1557d63e_edcc_4fe3_8f34_34702a0d50f2.slice',
  );
  assert.equal(
    podSlicePath('Guaranteed', UID),
    'kubepods.slice/kubepods-pod1557d63e_edcc_4fe3_8f34_34702a0d50f2.slice',
  );
});

test('containers live in cri-containerd-<id>.scope', () => {
  assert.equal(containerScopeName('ab'.repeat(32)), `cri-containerd-${'ab'.repeat(32)}.scope`);
});

test('bridge ports stay within IFNAMSIZ (15 bytes) for every node and host number', () => {
  assert.ok(Buffer.byteLength(bridgePortName(253, 251)) <= 15);
});

test('node names: node-<n> only', () => {
  assert.equal(nodeIndexOf('node-0'), 0);
  assert.equal(nodeIndexOf('node-12'), 12);
  assert.equal(nodeIndexOf('node-012'), null);
  assert.equal(nodeIndexOf('worker-1'), null);
});

test('pod IPs: the lowest free host number from .2, none when the /24 is full', () => {
  assert.equal(lowestFreeHost(new Set(), 251), 2);
  assert.equal(lowestFreeHost(new Set([2, 3, 5]), 251), 4);
  assert.equal(lowestFreeHost(new Set([2, 3]), 3), null);
});
