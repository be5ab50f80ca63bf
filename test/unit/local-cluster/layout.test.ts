// Pure parts of the local cluster runtime: naming/addressing, the VIP allocator, the journal parser, the
// image mapping and the spec file parser.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ClusterError } from '../../../src/local-cluster/errors.ts';
import { imageName, resolveContainerCommand } from '../../../src/local-cluster/images.ts';
import { type ClusterSpec, clusterLayout, planPods } from '../../../src/local-cluster/layout.ts';
import { parseClusterSpec } from '../../../src/local-cluster/spec-file.ts';
import { parseJournal } from '../../../src/local-cluster/state.ts';
import { ServiceVipAllocator } from '../../../src/local-cluster/vips.ts';

const LAYOUT = clusterLayout('demo', { stateRoot: '/run/ferry', cgroup2Root: '/sys/fs/cgroup' });
const FERRY = ['node', '/ferry/main.ts'] as const;

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ClusterError, String(err));
    return err.code;
  }
  return 'no error';
}

const pod = (name: string, node?: number, namespace = 'default') => ({
  namespace,
  name,
  ...(node === undefined ? {} : { node }),
  containers: [{ name: 'app', command: ['sleep', 'infinity'] }],
});

test('layout: every object carries the cluster prefix; the redirector subtree holds only pods', () => {
  assert.equal(LAYOUT.bridgeNetns, 'ferry-demo_bridge');
  assert.equal(LAYOUT.cgroupDir, '/sys/fs/cgroup/ferry.slice/demo');
  assert.equal(LAYOUT.podsCgroupDir, '/sys/fs/cgroup/ferry.slice/demo/pods');
  assert.equal(LAYOUT.pinRoot, '/sys/fs/bpf/ferry-demo');
  assert.equal(LAYOUT.stateDir, '/run/ferry/demo');
  // A cluster named like another's prefix never matches its objects: `_` cannot be in a cluster name.
  const other = clusterLayout('demo-2', { stateRoot: '/run/ferry', cgroup2Root: '/sys/fs/cgroup' });
  assert.ok(!other.bridgeNetns.startsWith(LAYOUT.netnsPrefix));
});

test('layout: bad cluster names are refused', () => {
  for (const name of ['', 'Demo', 'a_b', '-a', 'a-', 'a/b', 'x'.repeat(49)]) {
    assert.equal(
      codeOf(() => clusterLayout(name, { stateRoot: '/r', cgroup2Root: '/c' })),
      'FERRY_CLUSTER_INVALID_SPEC',
      name,
    );
  }
});

test('planPods: node n owns a.b.n.0/24; unplaced pods spread round-robin', () => {
  const spec: ClusterSpec = { name: 'demo', nodes: 2, pods: [pod('a', 1), pod('b'), pod('c'), pod('d', 1)] };
  const plan = planPods(LAYOUT, spec).map((p) => [p.spec.name, p.network.node, p.network.ip]);
  assert.deepEqual(plan, [
    ['a', 1, '10.244.1.2'],
    ['b', 0, '10.244.0.2'],
    ['c', 1, '10.244.1.3'],
    ['d', 1, '10.244.1.4'],
  ]);
  const [first] = planPods(LAYOUT, { ...spec, podCidr: '10.50.0.0/16' });
  assert.equal(first?.network.ip, '10.50.1.2');
  assert.equal(first?.network.gateway, '10.50.255.254');
  assert.equal(first?.network.netnsName, 'ferry-demo_default_a');
  assert.equal(first?.network.cgroupDir, '/sys/fs/cgroup/ferry.slice/demo/pods/node-1/default_a');
});

test('planPods: invalid specs name the bad value', () => {
  const cases: [string, ClusterSpec][] = [
    ['zero nodes', { name: 'demo', nodes: 0, pods: [] }],
    ['node out of range', { name: 'demo', nodes: 2, pods: [pod('a', 2)] }],
    ['duplicate pod', { name: 'demo', nodes: 1, pods: [pod('a'), pod('a')] }],
    ['bad namespace', { name: 'demo', nodes: 1, pods: [pod('a', 0, 'Bad_NS')] }],
    ['bad cidr', { name: 'demo', nodes: 1, pods: [], podCidr: '10.0.0.0/8' }],
    [
      'bad port',
      { name: 'demo', nodes: 1, pods: [{ namespace: 'd', name: 'a', containers: [{ name: 'c', ports: [70000] }] }] },
    ],
  ];
  for (const [name, spec] of cases)
    assert.equal(
      codeOf(() => planPods(LAYOUT, spec)),
      'FERRY_CLUSTER_INVALID_SPEC',
      name,
    );
});

test('VIP allocator: stable per service, lowest free, explicit clusterIPs reserved', () => {
  const vips = new ServiceVipAllocator();
  assert.equal(vips.allocate('default/echo'), '10.96.0.1');
  assert.equal(vips.allocate('default/web'), '10.96.0.2');
  assert.equal(vips.allocate('default/echo'), '10.96.0.1');
  vips.reserve('kube-system/dns', '10.96.0.10');
  assert.equal(
    codeOf(() => vips.reserve('other/dns', '10.96.0.10')),
    'FERRY_CLUSTER_INVALID_SPEC',
  );
  assert.equal(
    codeOf(() => vips.reserve('x/y', '10.97.0.1')),
    'FERRY_CLUSTER_INVALID_SPEC',
  );
  vips.release('default/echo');
  assert.equal(vips.allocate('default/new'), '10.96.0.3');
  const tiny = new ServiceVipAllocator('10.96.0.0/30');
  tiny.allocate('a');
  tiny.allocate('b');
  assert.equal(
    codeOf(() => tiny.allocate('c')),
    'FERRY_CLUSTER_INVALID_SPEC',
  );
});

test('journal: a torn last line (crash mid-write) and foreign garbage are problems, not failures', () => {
  const text = [
    '{"kind":"cluster","name":"demo","createdAtMs":1,"nodes":2}',
    '{"kind":"netns","name":"ferry-demo_bridge"}',
    '{"kind":"netns","name":"../../etc"}',
    '{"kind":"process","pid":1,"startTicks":"5","role":"x"}',
    'garbage',
    '{"kind":"cgroup","path":"/sys/fs/cgroup/ferry.slice/demo"}',
    '{"kind":"netns","name":"ferry-de',
  ].join('\n');
  const state = parseJournal(text);
  assert.deepEqual(
    state.records.map((r) => r.kind),
    ['cluster', 'netns', 'cgroup'],
  );
  assert.equal(state.problems.length, 4);
  assert.ok(state.problems.every((p) => p.code === 'FERRY_CLUSTER_STATE_CORRUPT'));
});

test('images: common images map to the built-in apps, commands run as given', () => {
  assert.equal(imageName('docker.io/library/busybox:1.36'), 'busybox');
  assert.equal(imageName('ghcr.io/ealen/echo-server@sha256:abc'), 'ealen/echo-server');
  assert.equal(imageName('localhost:5000/ferry/echo:dev'), 'ferry/echo');
  const r = (c: Parameters<typeof resolveContainerCommand>[0]) => resolveContainerCommand(c, FERRY).argv.join(' ');
  assert.equal(r({ name: 'c', image: 'ferry/echo' }), 'node /ferry/main.ts testapp http-echo --port 8080');
  assert.equal(
    r({ name: 'c', image: 'hashicorp/http-echo', args: ['-listen=:9999', '-text=hi'] }),
    'node /ferry/main.ts testapp http-echo --port 9999',
  );
  assert.equal(
    r({ name: 'c', image: 'kennethreitz/httpbin', ports: [8000] }),
    'node /ferry/main.ts testapp http-echo --port 8000',
  );
  assert.equal(r({ name: 'c', image: 'ferry/tcp-echo' }), 'node /ferry/main.ts testapp tcp-echo --port 9000');
  assert.equal(r({ name: 'c', image: 'ferry/grpc-echo' }), 'node /ferry/main.ts testapp grpc-echo --port 50051');
  assert.equal(
    r({ name: 'c', image: 'ferry/grpc-echo', ports: [9090] }),
    'node /ferry/main.ts testapp grpc-echo --port 9090',
  );
  assert.equal(r({ name: 'c', image: 'busybox' }), 'sleep infinity');
  assert.equal(
    r({ name: 'c', image: 'curlimages/curl', command: ['curl', 'http://x/'] }),
    'node /ferry/main.ts testapp curl http://x/',
  );
  assert.equal(r({ name: 'c', image: 'nginx', command: ['sh', '-c', 'sleep 1'] }), 'sh -c sleep 1');
  assert.equal(
    codeOf(() => resolveContainerCommand({ name: 'c', image: 'nginx' }, FERRY)),
    'FERRY_CLUSTER_UNSUPPORTED_IMAGE',
  );
});

test('spec file: YAML into a ClusterSpec; wrong types name the field', () => {
  const spec = parseClusterSpec(
    'nodes: 2\npods:\n  - name: a\n    labels: {app: a}\n    containers: [{name: c, image: ferry/echo, ports: [8080], env: {N: 1}}]\n',
    { name: 'demo' },
  );
  assert.equal(spec.name, 'demo');
  assert.equal(spec.pods[0]?.namespace, 'default');
  assert.deepEqual(spec.pods[0]?.containers[0]?.env, { N: '1' });
  assert.throws(
    () => parseClusterSpec('pods: [{name: a, containers: [{name: 1}]}]', {}),
    /pods\[0\]\.containers\[0\]\.name/,
  );
  assert.throws(() => parseClusterSpec('pods: {', {}), /FERRY|not YAML/);
  assert.equal(
    codeOf(() => parseClusterSpec('nodes: two', {})),
    'FERRY_CLUSTER_INVALID_SPEC',
  );
});
