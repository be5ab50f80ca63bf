// The ztunnel command line the chart renders, loaded by the real config parser of `ferry ztunnel` (as the
// DaemonSet's container would, with the env the chart gives it and the kubelet's in-cluster variables):
// node agent mode, BPF redirector on the host-mounted pod cgroup root, the host's /proc, nothing persisted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseArgs } from 'node:util';
import { loadZtunnelConfig, type ZtunnelFlags } from '../../src/ztunnel/config.ts';
import { container, find, render } from '../helpers/helm-render.ts';

function ztunnelFlags(args: readonly string[], env: Record<string, string>): ZtunnelFlags {
  // The kubelet expands $(VAR) from the container's env before the process starts.
  const expanded = args.slice(1).map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => env[name] ?? ''));
  const { values } = parseArgs({ args: expanded, options: Object.fromEntries(flagNames(expanded)), strict: true });
  return values as ZtunnelFlags;
}

function flagNames(args: readonly string[]): Array<[string, { type: 'string' | 'boolean' }]> {
  return args.map((a) => {
    const name = (a.split('=')[0] as string).replace(/^--/, '');
    return [name, { type: a.includes('=') ? 'string' : 'boolean' }];
  });
}

for (const [name, set, cgroupTop] of [
  ['systemd driver (default)', [], 'kubepods.slice'],
  ['cgroupfs driver', ['--set', 'ztunnel.hostPaths.podCgroupRoot=kubepods'], 'kubepods'],
] as const) {
  test(`the chart's ztunnel runs the node agent: ${name}`, () => {
    const args = container(find(render([...set]), 'DaemonSet', 'ferry-ztunnel'), 'ztunnel').args;
    const env = {
      NODE_NAME: 'worker-1',
      POD_UID: '0f6d2b7c-1a11-4bbb-9d52-1f0c9a4e4a3b',
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
    };
    const config = loadZtunnelConfig(ztunnelFlags(args, env), env, () => assert.fail('--cgroup-root is given'));
    assert.equal(config.node, 'worker-1');
    assert.deepEqual(config.enrollFrom, {
      kind: 'kubernetes',
      kubeconfigPath: null,
      kubeconfigEnv: null,
      inCluster: true,
      hostProc: '/host/proc',
      podUid: '0f6d2b7c-1a11-4bbb-9d52-1f0c9a4e4a3b', // its own pod: exempt from the fail-closed guard
    });
    assert.equal(config.redirect?.kind, 'bpf');
    if (config.redirect?.kind !== 'bpf') return;
    assert.match(config.redirect.cgroupRoot, new RegExp(`^/host/sys/fs/cgroup/${cgroupTop.replace('.', '\\.')}$`));
    assert.equal(config.redirect.statePath, null, 'enrollments are rebuilt from the pins and the API');
  });
}
