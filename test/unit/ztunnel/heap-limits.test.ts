// The ztunnel's V8 heap limits reach the process the local cluster launches, and the operator's own
// NODE_OPTIONS come after them (V8 takes the last value of a repeated flag, so the operator's win).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clusterLayout } from '../../../src/local-cluster/layout.ts';
import { ztunnelLaunch } from '../../../src/local-cluster/system-processes.ts';
import { ZTUNNEL_HEAP_FLAGS, ztunnelNodeOptions } from '../../../src/ztunnel/heap-limits.ts';

test('ztunnelNodeOptions: limits first, then the operator options', () => {
  assert.equal(ztunnelNodeOptions(undefined), ZTUNNEL_HEAP_FLAGS.join(' '));
  assert.equal(ztunnelNodeOptions(''), ZTUNNEL_HEAP_FLAGS.join(' '));
  assert.equal(
    ztunnelNodeOptions('--max-semi-space-size=64 --cpu-prof'),
    `${ZTUNNEL_HEAP_FLAGS.join(' ')} --max-semi-space-size=64 --cpu-prof`,
  );
  assert.ok(ZTUNNEL_HEAP_FLAGS.some((f) => f.startsWith('--max-semi-space-size=')));
});

test('the local cluster launches ztunnels with the heap limits (and FERRY_ZTUNNEL_NODE_OPTIONS after them)', () => {
  const layout = clusterLayout('c', { stateRoot: '/tmp/ferry-test-state', cgroup2Root: '/sys/fs/cgroup' });
  const config = {
    cluster: 'c',
    trustDomain: 'cluster.local',
    manifests: [],
    controller: { xds: '127.0.0.1:1', ca: '127.0.0.1:2', admin: '127.0.0.1:3' },
    nodes: [{ name: 'node-0', admin: '127.0.0.1:4', metrics: '127.0.0.1:5', readiness: '127.0.0.1:6', token: 't' }],
  };
  assert.equal(ztunnelLaunch(layout, config, 0, {})?.env.NODE_OPTIONS, ztunnelNodeOptions(undefined));
  assert.equal(
    ztunnelLaunch(layout, config, 0, { FERRY_ZTUNNEL_NODE_OPTIONS: '--cpu-prof' })?.env.NODE_OPTIONS,
    ztunnelNodeOptions('--cpu-prof'),
  );
});
