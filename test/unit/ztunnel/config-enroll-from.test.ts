// `ferry ztunnel --enroll-from=kubernetes` (src/ztunnel/config.ts): it implies the BPF redirector, needs
// the node's name, finds the pods' cgroup root when none is given, and refuses contradictions with a
// message naming the flag.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadZtunnelConfig, type ZtunnelFlags } from '../../../src/ztunnel/config.ts';

const BASE: ZtunnelFlags = { config: '/etc/mesh.yaml', node: 'node-a' };
const detected = () => '/sys/fs/cgroup/kubepods.slice';
const load = (flags: ZtunnelFlags, env: NodeJS.ProcessEnv = {}) =>
  loadZtunnelConfig({ ...BASE, ...flags }, env, detected);

test('default: admin enrollment, no redirector', () => {
  const c = load({});
  assert.deepEqual(c.enrollFrom, { kind: 'admin' });
  assert.deepEqual(c.redirect, { kind: 'none' });
});

test('kubernetes: BPF redirector on the detected pod root, /proc, kubeconfig choice', () => {
  const c = load(
    { 'enroll-from': 'kubernetes', 'redirect-state': '' },
    { KUBECONFIG: '/k', KUBERNETES_SERVICE_HOST: '10.0.0.1' },
  );
  assert.deepEqual(c.redirect, {
    kind: 'bpf',
    cgroupRoot: '/sys/fs/cgroup/kubepods.slice',
    pinRoot: '/sys/fs/bpf/ferry',
    statePath: null,
  });
  assert.deepEqual(c.enrollFrom, {
    kind: 'kubernetes',
    kubeconfigPath: null,
    kubeconfigEnv: '/k',
    inCluster: true,
    hostProc: '/proc',
    podUid: null,
  });
});

test('kubernetes: flags win over detection and the environment', () => {
  const c = load(
    {
      'enroll-from': 'kubernetes',
      redirect: 'bpf',
      'cgroup-root': '/cg/node',
      'host-proc': '/host/proc',
      kubeconfig: '/kc',
    },
    { FERRY_HOST_PROC: '/other' },
  );
  assert.equal(c.redirect?.kind === 'bpf' && c.redirect.cgroupRoot, '/cg/node');
  assert.deepEqual(c.enrollFrom, {
    kind: 'kubernetes',
    kubeconfigPath: '/kc',
    kubeconfigEnv: null,
    inCluster: false,
    hostProc: '/host/proc',
    podUid: null,
  });
  assert.equal(
    loadZtunnelConfig({ ...BASE }, { FERRY_ENROLL_FROM: 'kubernetes' }, detected).enrollFrom?.kind,
    'kubernetes',
  );
});

test('bad combinations fail with the flag named', () => {
  const cases: ReadonlyArray<[ZtunnelFlags, RegExp]> = [
    [{ 'enroll-from': 'api' }, /--enroll-from: expected admin or kubernetes/],
    [{ 'enroll-from': 'kubernetes', redirect: 'none' }, /use --redirect bpf/],
    [{ 'enroll-from': 'kubernetes', 'host-proc': 'proc' }, /--host-proc: expected an absolute path/],
    [{ 'host-proc': '/host/proc' }, /need --enroll-from=kubernetes/],
    [{ kubeconfig: '/kc' }, /need --enroll-from=kubernetes/],
  ];
  for (const [flags, message] of cases) {
    assert.throws(() => load(flags), { code: 'FERRY_CONFIG_INVALID', message }, JSON.stringify(flags));
  }
  assert.throws(() => loadZtunnelConfig({ config: '/m', 'enroll-from': 'kubernetes' }, {}, detected), {
    message: /needs --node/,
  });
  assert.throws(
    () =>
      loadZtunnelConfig({ ...BASE, 'enroll-from': 'kubernetes' }, {}, () => {
        throw new Error('neither kubepods.slice nor kubepods under /sys/fs/cgroup');
      }),
    { code: 'FERRY_CONFIG_INVALID', message: /--cgroup-root: neither kubepods.slice/ },
  );
});

test('kubernetes: --pod-uid names the ztunnel own pod (exempt from the guard); a bad uid is refused', () => {
  const flags = { 'enroll-from': 'kubernetes', 'redirect-state': '' };
  const own = load({ ...flags, 'pod-uid': '1f0c9a4e-4a3b' }, {});
  assert.equal(own.enrollFrom?.kind === 'kubernetes' && own.enrollFrom.podUid, '1f0c9a4e-4a3b');
  const fromEnv = load(flags, { FERRY_POD_UID: 'abc-1' });
  assert.equal(fromEnv.enrollFrom?.kind === 'kubernetes' && fromEnv.enrollFrom.podUid, 'abc-1');
  assert.throws(() => load({ ...flags, 'pod-uid': '../x' }, {}), { code: 'FERRY_CONFIG_INVALID' });
  assert.throws(() => load({ 'pod-uid': 'abc' }, {}), /need --enroll-from=kubernetes/);
});
