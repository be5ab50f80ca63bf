// Per-pod resolv.conf files (src/local-cluster/dns/resolv-conf.ts): content as the kubelet writes it, and
// a sweep that removes one cluster's entries only.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  podResolvConf,
  podResolvConfPath,
  removePodResolvConfs,
  writePodResolvConf,
} from '../../../../src/local-cluster/dns/resolv-conf.ts';

test('resolv.conf: cluster DNS, the namespace first in the search list, ndots:5', () => {
  const text = podResolvConf({ nameserver: '10.244.255.254', namespace: 'demo' });
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.deepEqual(lines, [
    'nameserver 10.244.255.254',
    'search demo.svc.cluster.local svc.cluster.local cluster.local',
    'options ndots:5',
  ]);
});

test('write then sweep: only names with the cluster prefix go, /etc/netns goes when left empty', (t) => {
  const root = join(mkdtempSync(join(tmpdir(), 'ferry-resolv-')), 'netns');
  t.after(() => rmSync(join(root, '..'), { recursive: true, force: true }));
  const a = writePodResolvConf('ferry-c1_demo_a', 'x\n', root);
  writePodResolvConf('ferry-c1_demo_b', 'y\n', root);
  writePodResolvConf('ferry-c10_demo_a', 'z\n', root);
  assert.equal(readFileSync(a, 'utf8'), 'x\n');
  assert.equal(a, podResolvConfPath('ferry-c1_demo_a', root));
  const removed = removePodResolvConfs('ferry-c1_', root);
  assert.equal(removed.length, 2);
  assert.ok(existsSync(join(root, 'ferry-c10_demo_a', 'resolv.conf')), 'another cluster is untouched');
  assert.deepEqual(removePodResolvConfs('ferry-c1_', root), [], 'idempotent');
  removePodResolvConfs('ferry-c10_', root);
  assert.equal(existsSync(root), false, 'empty /etc/netns removed');
  mkdirSync(join(root, 'admin-ns'), { recursive: true });
  writeFileSync(join(root, 'admin-ns', 'resolv.conf'), 'keep\n');
  assert.deepEqual(removePodResolvConfs('ferry-c1_', root), []);
  assert.ok(existsSync(join(root, 'admin-ns', 'resolv.conf')), "the admin's own entries stay");
});

test('netns names that are not plain file names are refused', () => {
  assert.throws(() => podResolvConfPath('../etc'), { code: 'FERRY_DNS_RESOLV_CONF_FAILED' });
  assert.throws(() => podResolvConfPath('a/b'), { code: 'FERRY_DNS_RESOLV_CONF_FAILED' });
});
