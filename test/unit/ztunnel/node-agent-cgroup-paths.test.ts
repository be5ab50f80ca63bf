// Where the kubelet puts a pod's cgroup (src/ztunnel/node-agent/cgroup-paths.ts): both cgroup drivers,
// every QoS class, the systemd `-` → `_` escaping, the runtimes' container cgroup names, the sandbox-first
// order, and hostile uids that must never produce a path outside the root.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  candidatePath,
  isInside,
  isSafePodUid,
  orderContainerCgroups,
  parseContainerCgroup,
  podCgroupCandidates,
  podParentDirs,
  podUidFromCgroupName,
} from '../../../src/ztunnel/node-agent/cgroup-paths.ts';

const UID = '1f0c9a4e-4a3b-4bbb-9d52-0f6d2b7c1a11';
const U_ = '1f0c9a4e_4a3b_4bbb_9d52_0f6d2b7c1a11';
const ID = 'a'.repeat(64);

test('candidates per QoS class, both drivers', () => {
  const cases: ReadonlyArray<['Guaranteed' | 'Burstable' | 'BestEffort', string[]]> = [
    ['Guaranteed', [`kubepods.slice/kubepods-pod${U_}.slice`, `kubepods/pod${UID}`]],
    [
      'Burstable',
      [`kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`, `kubepods/burstable/pod${UID}`],
    ],
    [
      'BestEffort',
      [`kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${U_}.slice`, `kubepods/besteffort/pod${UID}`],
    ],
  ];
  for (const [qos, expected] of cases) {
    const got = podCgroupCandidates(UID, qos);
    assert.deepEqual(
      got.map((c) => c.segments.join('/')),
      expected,
      qos,
    );
    assert.deepEqual(
      got.map((c) => c.driver),
      ['systemd', 'cgroupfs'],
    );
  }
});

test('an unknown QoS class tries all three in both drivers, systemd first', () => {
  const got = podCgroupCandidates(UID, null);
  assert.equal(got.length, 6);
  assert.deepEqual(
    got.map((c) => `${c.driver}:${c.qosClass}`),
    [
      'systemd:Guaranteed',
      'systemd:Burstable',
      'systemd:BestEffort',
      'cgroupfs:Guaranteed',
      'cgroupfs:Burstable',
      'cgroupfs:BestEffort',
    ],
  );
});

test('candidatePath: under a node directory, or with the top-level directory as the root', () => {
  const [systemd, cgroupfs] = podCgroupCandidates(UID, 'Burstable');
  assert.ok(systemd && cgroupfs);
  assert.equal(
    candidatePath('/sys/fs/cgroup/kubepods.slice', systemd),
    `/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`,
  );
  assert.equal(
    candidatePath('/sys/fs/cgroup', systemd),
    `/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${U_}.slice`,
  );
  assert.equal(candidatePath('/sys/fs/cgroup/kubepods', cgroupfs), `/sys/fs/cgroup/kubepods/burstable/pod${UID}`);
  assert.equal(candidatePath('/x/node-a', cgroupfs), `/x/node-a/kubepods/burstable/pod${UID}`);
  // A root of the other layout: the candidate lands inside it and simply will not exist.
  assert.equal(
    candidatePath('/sys/fs/cgroup/kubepods.slice', cgroupfs),
    `/sys/fs/cgroup/kubepods.slice/kubepods/burstable/pod${UID}`,
  );
});

test('hostile uids produce no candidate (nothing can escape the root)', () => {
  for (const uid of [
    '',
    '../x',
    '..',
    'a/b',
    '/abs',
    'a\0b',
    'a b',
    'a_b',
    '.hidden',
    'a.b',
    '-x',
    'x'.repeat(129),
    '\\..',
  ]) {
    assert.equal(isSafePodUid(uid), false, JSON.stringify(uid));
    assert.deepEqual(podCgroupCandidates(uid, null), [], JSON.stringify(uid));
  }
  assert.equal(isSafePodUid(UID), true);
  assert.equal(isSafePodUid('ABC-123'), true);
});

test('isInside', () => {
  assert.equal(isInside('/r', '/r/a'), true);
  assert.equal(isInside('/r', '/r'), true);
  assert.equal(isInside('/r', '/r/../x'), false);
  assert.equal(isInside('/r', '/rx/a'), false);
});

test('container cgroup names of containerd, CRI-O and cri-dockerd, both drivers', () => {
  const cases: ReadonlyArray<[string, ReturnType<typeof parseContainerCgroup>]> = [
    [`cri-containerd-${ID}.scope`, { kind: 'container', id: ID }],
    [ID, { kind: 'container', id: ID }],
    [`crio-${ID}.scope`, { kind: 'container', id: ID }],
    [`crio-${ID}`, { kind: 'container', id: ID }],
    [`crio-conmon-${ID}.scope`, { kind: 'monitor', id: ID }],
    [`crio-conmon-${ID}`, { kind: 'monitor', id: ID }],
    [`docker-${ID}.scope`, { kind: 'container', id: ID }],
    ['app', { kind: 'unknown' }],
    [`cri-containerd-${ID}`, { kind: 'unknown' }],
    [`cri-containerd-${ID.toUpperCase()}.scope`, { kind: 'unknown' }],
  ];
  for (const [name, expected] of cases) assert.deepEqual(parseContainerCgroup(name), expected, name);
});

test('order: the sandbox (a container the status does not list) first, app containers, unknown; never conmon', () => {
  const sandbox = 'b'.repeat(64);
  const app = 'c'.repeat(64);
  const children = [`crio-conmon-${sandbox}.scope`, 'zzz', `crio-${app}.scope`, `crio-${sandbox}.scope`];
  assert.deepEqual(orderContainerCgroups(children, new Set([app])), [
    `crio-${sandbox}.scope`,
    `crio-${app}.scope`,
    'zzz',
  ]);
  // containerd with the cgroupfs driver: bare ids.
  assert.deepEqual(orderContainerCgroups([app, sandbox], new Set([app])), [sandbox, app]);
  assert.deepEqual(orderContainerCgroups([], new Set()), []);
});

test('pod uid from a pod cgroup directory name (the guard classifies a new directory by it)', () => {
  const cases: ReadonlyArray<[string, string | null]> = [
    [`kubepods-burstable-pod${U_}.slice`, UID],
    [`kubepods-besteffort-pod${U_}.slice`, UID],
    [`kubepods-pod${U_}.slice`, UID],
    [`pod${UID}`, UID],
    ['kubepods-burstable.slice', null],
    ['besteffort', null],
    [`cri-containerd-${ID}.scope`, null],
    ['pod..', null],
    ['pod', null],
  ];
  for (const [name, uid] of cases) assert.equal(podUidFromCgroupName(name), uid, name);
});

test('directories a pod cgroup appears in, from the node directory or from kubepods.slice itself', () => {
  assert.deepEqual(podParentDirs('/sys/fs/cgroup/node'), [
    '/sys/fs/cgroup/node/kubepods.slice',
    '/sys/fs/cgroup/node/kubepods.slice/kubepods-burstable.slice',
    '/sys/fs/cgroup/node/kubepods.slice/kubepods-besteffort.slice',
    '/sys/fs/cgroup/node/kubepods',
    '/sys/fs/cgroup/node/kubepods/burstable',
    '/sys/fs/cgroup/node/kubepods/besteffort',
  ]);
  assert.deepEqual(podParentDirs('/sys/fs/cgroup/kubepods.slice').slice(0, 3), [
    '/sys/fs/cgroup/kubepods.slice',
    '/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice',
    '/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice',
  ]);
});
