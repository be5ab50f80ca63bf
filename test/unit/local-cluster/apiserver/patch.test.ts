// JSON merge patch (RFC 7386) and JSON patch (RFC 6902).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyJsonPatch, applyMergePatch, PatchError } from '../../../../src/local-cluster/apiserver/patch.ts';

test('merge patch: maps merge, null deletes, lists replace', () => {
  const doc = { a: { b: 1, c: 2 }, l: [1, 2] };
  assert.deepEqual(applyMergePatch(doc, { a: { b: null, d: 3 }, l: [3] }), { a: { c: 2, d: 3 }, l: [3] });
  assert.deepEqual(doc, { a: { b: 1, c: 2 }, l: [1, 2] });
});

const jsonCases: [string, unknown, unknown, unknown][] = [
  ['add to map', { a: 1 }, [{ op: 'add', path: '/b', value: 2 }], { a: 1, b: 2 }],
  ['add to list end', { l: [1] }, [{ op: 'add', path: '/l/-', value: 2 }], { l: [1, 2] }],
  ['insert into list', { l: [1, 3] }, [{ op: 'add', path: '/l/1', value: 2 }], { l: [1, 2, 3] }],
  ['remove', { a: 1, b: 2 }, [{ op: 'remove', path: '/a' }], { b: 2 }],
  ['replace', { a: 1 }, [{ op: 'replace', path: '/a', value: 5 }], { a: 5 }],
  ['move', { a: 1 }, [{ op: 'move', from: '/a', path: '/b' }], { b: 1 }],
  ['copy', { a: { x: 1 } }, [{ op: 'copy', from: '/a', path: '/b' }], { a: { x: 1 }, b: { x: 1 } }],
  ['test passes', { a: 1 }, [{ op: 'test', path: '/a', value: 1 }], { a: 1 }],
  ['escaped pointer', { 'a/b': 1 }, [{ op: 'replace', path: '/a~1b', value: 2 }], { 'a/b': 2 }],
  [
    'label with a slash',
    { metadata: { labels: {} } },
    [{ op: 'add', path: '/metadata/labels/istio.io~1rev', value: 'x' }],
    { metadata: { labels: { 'istio.io/rev': 'x' } } },
  ],
];
for (const [name, doc, patch, want] of jsonCases) {
  test(`json patch: ${name}`, () => assert.deepEqual(applyJsonPatch(doc, patch), want));
}

const badJson: [string, unknown, unknown][] = [
  ['test fails', { a: 1 }, [{ op: 'test', path: '/a', value: 2 }]],
  ['remove missing', { a: 1 }, [{ op: 'remove', path: '/b' }]],
  ['bad index', { l: [1] }, [{ op: 'add', path: '/l/5', value: 1 }]],
  ['unknown op', { a: 1 }, [{ op: 'frob', path: '/a' }]],
  ['not a list', { a: 1 }, { op: 'add' }],
];
for (const [name, doc, patch] of badJson) {
  test(`json patch refused: ${name}`, () => assert.throws(() => applyJsonPatch(doc, patch), PatchError));
}
