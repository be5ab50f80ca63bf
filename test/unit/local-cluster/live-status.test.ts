// `ferry status`'s live view (live-status.ts): a pod's enrollment is what its node's ztunnel reports on
// GET /pods (matched by netns path), the controller's last view when that ztunnel does not answer; process
// liveness is checked now, not taken from a supervisor report that may be stale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MeshStatus, PodStatus } from '../../../src/local-cluster/controller/admin-api.ts';
import { liveStatusLines, withLiveState } from '../../../src/local-cluster/live-status.ts';
import type { PodRecord } from '../../../src/local-cluster/state.ts';

const pod = (name: string, node: string): PodStatus => ({
  namespace: 'ns',
  name,
  node,
  ip: '10.0.0.1',
  meshed: true,
  enrolled: true,
  identity: null,
  waypoint: false,
});
const rec = (name: string, node: number): PodRecord => ({
  kind: 'pod',
  namespace: 'ns',
  name,
  node,
  ip: '10.0.0.1',
  netnsPath: `/run/netns/${name}`,
  cgroupDir: `/cg/${name}`,
  labels: {},
});
const status: MeshStatus = {
  cluster: 'c',
  revision: 1,
  nodes: [],
  pods: [pod('a', 'node-0'), pod('b', 'node-0'), pod('c', 'node-1')],
  pendingPods: [],
  services: [],
  policies: [],
  waypoints: [],
  routes: [],
  diagnostics: [],
};

test('enrollment from the ztunnels; the controller view where a ztunnel does not answer', () => {
  const s = withLiveState(
    status,
    [rec('a', 0), rec('b', 0), rec('c', 1)],
    [
      { node: 'node-0', netnsPaths: new Set(['/run/netns/a']), error: null },
      { node: 'node-1', netnsPaths: null, error: 'ECONNREFUSED' },
    ],
    {
      pid: 7,
      updatedAt: '',
      processes: [
        {
          role: 'ztunnel-node-0',
          kind: 'ztunnel',
          pid: 10,
          running: true,
          restarts: 2,
          lastExitAt: null,
          nextStartAt: null,
        },
        {
          role: 'ztunnel-node-1',
          kind: 'ztunnel',
          pid: 11,
          running: true,
          restarts: 0,
          lastExitAt: null,
          nextStartAt: null,
        },
      ],
    },
    (role) => (role === 'ztunnel-node-0' ? 12 : null), // node-1's ztunnel and the supervisor are gone
  );
  assert.deepEqual(
    s.pods.map((p) => [p.name, p.enrolled, p.controllerEnrolled, p.enrolledFrom]),
    [
      ['a', true, true, 'ztunnel'],
      ['b', false, true, 'ztunnel'], // unenrolled behind the controller's back
      ['c', true, true, 'controller'],
    ],
  );
  assert.deepEqual(s.supervisor, { running: false, pid: null });
  assert.deepEqual(
    s.processes.map((p) => [p.role, p.running, p.pid, p.restarts]),
    [
      ['ztunnel-node-0', true, 12, 2],
      ['ztunnel-node-1', false, 11, 0],
    ],
  );
  const lines = liveStatusLines(s, 0).join('\n');
  assert.match(lines, /supervisor is NOT running/);
  assert.match(lines, /ztunnel node-1: \/pods did not answer \(ECONNREFUSED\)/);
  assert.match(lines, /ns\/b: NOT enrolled on node-0's ztunnel, the controller last saw enrolled/);
});
