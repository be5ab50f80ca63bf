// The locator's fs layer (src/ztunnel/node-agent/locate.ts) on real directory trees laid out like the
// kubelet's (plain files stand in for cgroup.procs and <proc>/<pid>/ns/net; the namespaced test runs the
// same code on real cgroups): both drivers, sandbox-first process choice, exited processes, pods without
// process or cgroup, a v1-only pod, a hostile uid, and the default root's detection.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cgroupV1Mounts, detectCgroupRoot, locatePod } from '../../../src/ztunnel/node-agent/locate.ts';
import { type NodePod, parseNodePod } from '../../../src/ztunnel/node-agent/pod.ts';

const UID = '1f0c9a4e-4a3b-4bbb-9d52-0f6d2b7c1a11';
const U_ = UID.replaceAll('-', '_');
const SANDBOX = 'a'.repeat(64);
const APP = 'b'.repeat(64);

function pod(uid = UID, qosClass: string | null = 'Burstable', appIds: string[] = [APP]): NodePod {
  const p = parseNodePod({
    metadata: { uid, namespace: 'demo', name: 'web' },
    spec: { nodeName: 'n' },
    status: {
      ...(qosClass === null ? {} : { qosClass }),
      containerStatuses: appIds.map((id) => ({ containerID: `containerd://${id}` })),
    },
  });
  assert.ok(p);
  return p;
}

async function fixture(t: import('node:test').TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-locate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hostProc = join(dir, 'proc');
  const cgroup = async (path: string, pids: number[] = []) => {
    await mkdir(path, { recursive: true });
    await writeFile(join(path, 'cgroup.procs'), pids.map((p) => `${p}\n`).join(''));
  };
  const proc = async (pid: number) => {
    await mkdir(join(hostProc, String(pid), 'ns'), { recursive: true });
    await writeFile(join(hostProc, String(pid), 'ns', 'net'), '');
  };
  return { dir, hostProc, cgroup, proc };
}

test('systemd driver: sandbox process first, root given as kubepods.slice', async (t) => {
  const f = await fixture(t);
  const root = join(f.dir, 'v2', 'kubepods.slice');
  const podDir = join(root, 'kubepods-burstable.slice', `kubepods-burstable-pod${U_}.slice`);
  await f.cgroup(podDir);
  await f.cgroup(join(podDir, `cri-containerd-${APP}.scope`), [200]);
  await f.cgroup(join(podDir, `cri-containerd-${SANDBOX}.scope`), [100]);
  await f.proc(100);
  await f.proc(200);
  const where = await locatePod(pod(), { cgroupRoot: root, hostProc: f.hostProc, v1Roots: [] });
  assert.deepEqual(where, {
    cgroupPath: podDir,
    netnsPath: join(f.hostProc, '100', 'ns', 'net'),
    pid: 100,
    driver: 'systemd',
  });
});

test('cgroupfs driver, Guaranteed (no QoS level), QoS not reported yet; an exited sandbox pid is skipped', async (t) => {
  const f = await fixture(t);
  const root = join(f.dir, 'node');
  const podDir = join(root, 'kubepods', `pod${UID}`);
  await f.cgroup(podDir);
  await f.cgroup(join(podDir, SANDBOX), [101, 102]); // 101 has exited: no /proc entry
  await f.proc(102);
  const where = await locatePod(pod(UID, null), { cgroupRoot: root, hostProc: f.hostProc, v1Roots: [] });
  assert.equal(where.cgroupPath, podDir);
  assert.equal(where.pid, 102);
  assert.equal(where.driver, 'cgroupfs');
});

test('app containers restart: with the sandbox alive it stays the netns source; without it, an app process', async (t) => {
  const f = await fixture(t);
  const root = join(f.dir, 'kubepods.slice');
  const podDir = join(root, 'kubepods-besteffort.slice', `kubepods-besteffort-pod${U_}.slice`);
  await f.cgroup(join(podDir, `crio-conmon-${APP}.scope`), [300]); // conmon: host netns, never used
  await f.cgroup(join(podDir, `crio-${APP}.scope`), [301]);
  await f.proc(300);
  await f.proc(301);
  const where = await locatePod(pod(UID, 'BestEffort'), { cgroupRoot: root, hostProc: f.hostProc, v1Roots: [] });
  assert.equal(where.pid, 301);
});

test('no process yet, no cgroup yet, only in cgroup v1, hostile uid: typed errors', async (t) => {
  const f = await fixture(t);
  const root = join(f.dir, 'kubepods.slice');
  const opts = { cgroupRoot: root, hostProc: f.hostProc, v1Roots: [join(f.dir, 'v1', 'pids')] };
  await assert.rejects(locatePod(pod(), opts), { code: 'FERRY_NODE_AGENT_POD_NOT_FOUND' });
  const v1Pod = join(f.dir, 'v1', 'pids', 'kubepods', 'burstable', `pod${UID}`);
  await f.cgroup(join(v1Pod, SANDBOX), [400]);
  await f.proc(400);
  await assert.rejects(locatePod(pod(), opts), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FERRY_NODE_AGENT_CGROUP_V1');
    assert.match(err.message, /pid 400/);
    assert.match(err.message, /cgroup v2/);
    return true;
  });
  const podDir = join(root, 'kubepods-burstable.slice', `kubepods-burstable-pod${U_}.slice`);
  await f.cgroup(join(podDir, `cri-containerd-${SANDBOX}.scope`));
  await assert.rejects(locatePod(pod(), opts), { code: 'FERRY_NODE_AGENT_NO_PROCESS' });
  await assert.rejects(locatePod(pod('../../etc'), opts), { code: 'FERRY_NODE_AGENT_BAD_POD_UID' });
});

test('detectCgroupRoot: kubepods.slice, else kubepods, under the cgroup2 mount (hybrid hosts too)', async (t) => {
  const f = await fixture(t);
  const v2 = join(f.dir, 'unified');
  const mounts = `cgroup ${join(f.dir, 'pids')} cgroup rw,pids 0 0\ncgroup2 ${v2} cgroup2 rw 0 0\n`;
  assert.throws(() => detectCgroupRoot(mounts), { code: 'FERRY_NODE_AGENT_NO_CGROUP_ROOT' });
  await mkdir(join(v2, 'kubepods'), { recursive: true });
  assert.equal(detectCgroupRoot(mounts), join(v2, 'kubepods'));
  await mkdir(join(v2, 'kubepods.slice'));
  assert.equal(detectCgroupRoot(mounts), join(v2, 'kubepods.slice'));
  assert.throws(() => detectCgroupRoot('proc /proc proc rw 0 0\n'), { code: 'FERRY_NODE_AGENT_NO_CGROUP_ROOT' });
  assert.deepEqual(cgroupV1Mounts(mounts), [join(f.dir, 'pids')]);
});
