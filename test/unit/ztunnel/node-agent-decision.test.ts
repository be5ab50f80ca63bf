// The node agent's decision for one pod of its node (src/ztunnel/node-agent/decision.ts) and the parsing of
// Pods and Namespaces from the API's JSON (pod.ts): lifecycle (phases, deletion, other node) on top of the
// shared ambient rule, and hostile or partial objects.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideEnrollment } from '../../../src/ztunnel/node-agent/decision.ts';
import { type NodePod, namespaceLabels, parseNodePod } from '../../../src/ztunnel/node-agent/pod.ts';

const AMBIENT = new Map([['istio.io/dataplane-mode', 'ambient']]);
const PLAIN = new Map<string, string>();

function pod(overrides: Record<string, unknown> = {}): NodePod {
  const parsed = parseNodePod({
    metadata: { uid: '1f0c9a4e-4a3b-4bbb-9d52-0f6d2b7c1a11', namespace: 'demo', name: 'web' },
    spec: { nodeName: 'node-a', containers: [{ name: 'app' }] },
    status: { phase: 'Running', qosClass: 'Burstable' },
    ...overrides,
  });
  assert.ok(parsed);
  return parsed;
}

test('lifecycle × namespace label', () => {
  const cases: ReadonlyArray<[string, NodePod, ReadonlyMap<string, string>, boolean, string]> = [
    ['running, ambient namespace', pod(), AMBIENT, true, 'namespace-ambient'],
    ['running, plain namespace', pod(), PLAIN, false, 'not-labelled'],
    ['pending (no phase yet), ambient', pod({ status: {} }), AMBIENT, true, 'namespace-ambient'],
    ['Pending, ambient', pod({ status: { phase: 'Pending' } }), AMBIENT, true, 'namespace-ambient'],
    ['Succeeded', pod({ status: { phase: 'Succeeded' } }), AMBIENT, false, 'terminal-phase'],
    ['Failed', pod({ status: { phase: 'Failed' } }), AMBIENT, false, 'terminal-phase'],
    [
      'terminating',
      pod({ metadata: { uid: 'u1', namespace: 'demo', name: 'web', deletionTimestamp: '2026-01-01T00:00:00Z' } }),
      AMBIENT,
      false,
      'terminating',
    ],
    ['another node', pod({ spec: { nodeName: 'node-b', containers: [] } }), AMBIENT, false, 'other-node'],
    ['unscheduled', pod({ spec: { containers: [] } }), AMBIENT, false, 'other-node'],
    [
      'hostNetwork',
      pod({ spec: { nodeName: 'node-a', hostNetwork: true, containers: [] } }),
      AMBIENT,
      false,
      'host-network',
    ],
    [
      'sidecar container',
      pod({ spec: { nodeName: 'node-a', containers: [{ name: 'app' }, { name: 'istio-proxy' }] } }),
      AMBIENT,
      false,
      'sidecar',
    ],
    [
      'pod label ambient in a plain namespace',
      pod({
        metadata: { uid: 'u1', namespace: 'demo', name: 'web', labels: { 'istio.io/dataplane-mode': 'ambient' } },
      }),
      PLAIN,
      true,
      'pod-ambient',
    ],
    [
      'pod label none in an ambient namespace',
      pod({ metadata: { uid: 'u1', namespace: 'demo', name: 'web', labels: { 'istio.io/dataplane-mode': 'none' } } }),
      AMBIENT,
      false,
      'pod-opted-out',
    ],
  ];
  for (const [name, p, ns, enroll, reason] of cases) {
    assert.deepEqual(decideEnrollment(p, 'node-a', ns), { enroll, reason }, name);
  }
});

test("the ztunnel's own pod (--pod-uid) is never enrolled, whatever its labels", () => {
  const own = pod();
  assert.deepEqual(decideEnrollment(own, 'node-a', AMBIENT, own.uid), { enroll: false, reason: 'own-pod' });
  assert.deepEqual(decideEnrollment(own, 'node-a', AMBIENT, 'another-uid'), {
    enroll: true,
    reason: 'namespace-ambient',
  });
  assert.deepEqual(decideEnrollment(own, 'node-a', AMBIENT, null), { enroll: true, reason: 'namespace-ambient' });
});

test('parseNodePod reads the fields enrollment needs', () => {
  const p = parseNodePod({
    metadata: {
      uid: 'abc-1',
      namespace: 'demo',
      name: 'web',
      labels: { app: 'web', bad: 7 },
      annotations: { 'sidecar.istio.io/status': '{}' },
    },
    spec: { nodeName: 'n', hostNetwork: true, containers: [{ name: 'app' }, { image: 'x' }, 'junk'] },
    status: {
      phase: 'Running',
      qosClass: 'Guaranteed',
      containerStatuses: [{ containerID: 'containerd://aaaabbbbcccc' }, { containerID: 'bad' }, {}],
      initContainerStatuses: [{ containerID: 'cri-o://ddddeeeeffff' }],
    },
  });
  assert.ok(p);
  assert.deepEqual([...p.labels], [['app', 'web']]);
  assert.equal(p.annotations.has('sidecar.istio.io/status'), true);
  assert.deepEqual(p.containerNames, ['app']);
  assert.equal(p.hostNetwork, true);
  assert.equal(p.qosClass, 'Guaranteed');
  assert.deepEqual([...p.containerIds].sort(), ['aaaabbbbcccc', 'ddddeeeeffff']);
});

test('parseNodePod refuses objects without uid, namespace or name; tolerates a missing spec and status', () => {
  assert.equal(parseNodePod({}), null);
  assert.equal(parseNodePod({ metadata: { namespace: 'a', name: 'b' } }), null);
  assert.equal(parseNodePod({ metadata: { uid: '', namespace: 'a', name: 'b' } }), null);
  assert.equal(parseNodePod({ metadata: { uid: 'u', namespace: 'a', name: 7 } }), null);
  const bare = parseNodePod({ metadata: { uid: 'u', namespace: 'a', name: 'b' } });
  assert.ok(bare);
  assert.equal(bare.nodeName, '');
  assert.equal(bare.phase, '');
  assert.equal(bare.qosClass, null);
  assert.equal(
    parseNodePod({ metadata: { uid: 'u', namespace: 'a', name: 'b' }, status: { qosClass: 'Gold' } })?.qosClass,
    null,
  );
});

test('namespaceLabels', () => {
  assert.deepEqual(namespaceLabels({ metadata: { name: 'demo', labels: { a: 'b' } } }), {
    name: 'demo',
    labels: new Map([['a', 'b']]),
  });
  assert.equal(namespaceLabels({ metadata: {} }), null);
});
