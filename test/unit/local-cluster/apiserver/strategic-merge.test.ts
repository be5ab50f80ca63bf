// biome-ignore-all lint/suspicious/noExplicitAny: fixtures are JSON documents read by path in assertions
// Strategic merge patch as client-side kubectl apply computes it for built-in kinds.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PatchError } from '../../../../src/local-cluster/apiserver/patch.ts';
import { applyStrategicMergePatch } from '../../../../src/local-cluster/apiserver/strategic-merge.ts';

const pod = {
  metadata: { name: 'p', labels: { a: '1', b: '2' }, finalizers: ['x'] },
  spec: {
    containers: [
      {
        name: 'app',
        image: 'app:1',
        ports: [{ containerPort: 80 }, { containerPort: 81 }],
        env: [{ name: 'A', value: '1' }],
      },
      { name: 'side', image: 'side:1' },
    ],
    tolerations: [{ key: 'k1' }],
  },
};

const cases: [string, string, unknown, unknown, (out: any) => void][] = [
  [
    'maps merge, null deletes',
    'Pod',
    pod,
    { metadata: { labels: { a: null, c: '3' } } },
    (o) => assert.deepEqual(o.metadata.labels, { b: '2', c: '3' }),
  ],
  [
    'containers merge by name (image of one changes, other kept)',
    'Pod',
    pod,
    { spec: { containers: [{ name: 'app', image: 'app:2' }] } },
    (o) => {
      assert.equal(o.spec.containers.length, 2);
      assert.equal(o.spec.containers[0].image, 'app:2');
      assert.deepEqual(o.spec.containers[0].ports, [{ containerPort: 80 }, { containerPort: 81 }]);
      assert.equal(o.spec.containers[1].image, 'side:1');
    },
  ],
  [
    'new container appended',
    'Pod',
    pod,
    { spec: { containers: [{ name: 'third', image: 't' }] } },
    (o) =>
      assert.deepEqual(
        o.spec.containers.map((c: any) => c.name),
        ['app', 'side', 'third'],
      ),
  ],
  [
    '$patch: delete removes a list element by merge key',
    'Pod',
    pod,
    { spec: { containers: [{ name: 'side', $patch: 'delete' }] } },
    (o) =>
      assert.deepEqual(
        o.spec.containers.map((c: any) => c.name),
        ['app'],
      ),
  ],
  [
    'container ports merge by containerPort',
    'Pod',
    pod,
    { spec: { containers: [{ name: 'app', ports: [{ containerPort: 81, name: 'admin' }] }] } },
    (o) => assert.deepEqual(o.spec.containers[0].ports, [{ containerPort: 80 }, { containerPort: 81, name: 'admin' }]),
  ],
  [
    'env merges by name',
    'Pod',
    pod,
    { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '2' }] }] } },
    (o) =>
      assert.deepEqual(
        o.spec.containers[0].env.map((e: any) => e.name),
        ['A', 'B'],
      ),
  ],
  [
    'lists without a strategy are replaced',
    'Pod',
    pod,
    { spec: { tolerations: [{ key: 'k2' }] } },
    (o) => assert.deepEqual(o.spec.tolerations, [{ key: 'k2' }]),
  ],
  [
    'finalizers merge as a set',
    'Pod',
    pod,
    { metadata: { finalizers: ['y', 'x'] } },
    (o) => assert.deepEqual(o.metadata.finalizers, ['x', 'y']),
  ],
  [
    '$deleteFromPrimitiveList',
    'Pod',
    pod,
    { metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] } },
    (o) => assert.deepEqual(o.metadata.finalizers, []),
  ],
  [
    '$setElementOrder reorders',
    'Pod',
    pod,
    {
      spec: {
        '$setElementOrder/containers': [{ name: 'side' }, { name: 'app' }],
        containers: [{ name: 'app', image: 'app:3' }],
      },
    },
    (o) =>
      assert.deepEqual(
        o.spec.containers.map((c: any) => `${c.name}:${c.image}`),
        ['side:side:1', 'app:app:3'],
      ),
  ],
  [
    '$patch: replace on a map',
    'Pod',
    pod,
    { metadata: { labels: { $patch: 'replace', only: 'one' } } },
    (o) => assert.deepEqual(o.metadata.labels, { only: 'one' }),
  ],
  [
    '$retainKeys drops other keys',
    'Pod',
    { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } },
    { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
    (o) => assert.deepEqual(o.spec.strategy, { type: 'Recreate' }),
  ],
  [
    'service ports merge by port',
    'Service',
    { spec: { ports: [{ port: 80, targetPort: 8080 }, { port: 443 }] } },
    { spec: { ports: [{ port: 80, targetPort: 9090 }] } },
    (o) => assert.deepEqual(o.spec.ports, [{ port: 80, targetPort: 9090 }, { port: 443 }]),
  ],
  [
    'deployment template containers merge by name',
    'Deployment',
    {
      spec: {
        replicas: 1,
        template: {
          spec: {
            containers: [
              { name: 'a', image: '1' },
              { name: 'b', image: '1' },
            ],
          },
        },
      },
    },
    { spec: { replicas: 3, template: { spec: { containers: [{ name: 'b', image: '2' }] } } } },
    (o) => {
      assert.equal(o.spec.replicas, 3);
      assert.deepEqual(o.spec.template.spec.containers, [
        { name: 'a', image: '1' },
        { name: 'b', image: '2' },
      ]);
    },
  ],
  [
    'conditions merge by type',
    'Deployment',
    {
      status: {
        conditions: [
          { type: 'Available', status: 'False' },
          { type: 'Progressing', status: 'True' },
        ],
      },
    },
    { status: { conditions: [{ type: 'Available', status: 'True' }] } },
    (o) =>
      assert.deepEqual(o.status.conditions, [
        { type: 'Available', status: 'True' },
        { type: 'Progressing', status: 'True' },
      ]),
  ],
  [
    'unknown kinds: lists replace',
    'Widget',
    { spec: { items: [1, 2] } },
    { spec: { items: [3] } },
    (o) => assert.deepEqual(o.spec.items, [3]),
  ],
];

for (const [name, kind, original, patch, check] of cases) {
  test(`strategic merge: ${name}`, () => {
    const before = JSON.stringify(original);
    check(applyStrategicMergePatch(original, patch, kind));
    assert.equal(JSON.stringify(original), before, 'the original is not mutated');
  });
}

test('strategic merge: an element without its merge key is refused', () => {
  assert.throws(() => applyStrategicMergePatch(pod, { spec: { containers: [{ image: 'x' }] } }, 'Pod'), PatchError);
});

test('strategic merge: "__proto__" in a patch is data, not a prototype', () => {
  const out = applyStrategicMergePatch(
    {},
    JSON.parse('{"metadata":{"labels":{"__proto__":{"polluted":"yes"}}}}'),
    'Pod',
  ) as any;
  assert.equal(({} as any).polluted, undefined);
  assert.ok(Object.hasOwn(out.metadata.labels, '__proto__'));
});
