// SelectorPolicyIndex: the selector policies of a pod's namespace (and of the root namespace) that select
// its labels, in input order; a property test against filtering the whole list.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { matchesLabels } from '../../../src/controller/sources/label-match.ts';
import type { Labels } from '../../../src/controller/sources/types.ts';
import { type SelectorPolicy, SelectorPolicyIndex } from '../../../src/controller/translate/selector-index.ts';

const ROOT = 'istio-system';
const labels = (o: Record<string, string>): Labels => new Map(Object.entries(o));
const pol = (key: string, namespace: string, selector: Record<string, string>): SelectorPolicy => ({
  key,
  namespace,
  selector: labels(selector),
});

/** What translateWorkload did before the index: every selector policy, filtered. */
function reference(policies: readonly SelectorPolicy[], namespace: string, podLabels: Labels): string[] {
  return policies
    .filter((p) => (p.namespace === namespace || p.namespace === ROOT) && matchesLabels(p.selector, podLabels))
    .map((p) => p.key);
}

test('selector index: own namespace and root namespace, all pairs required, empty selector selects all', () => {
  const policies = [
    pol('shop/web', 'shop', { app: 'web' }),
    pol('shop/web-v2', 'shop', { app: 'web', version: 'v2' }),
    pol('root/web', ROOT, { app: 'web' }),
    pol('other/web', 'other', { app: 'web' }),
    pol('shop/all', 'shop', {}),
    pol('shop/db', 'shop', { app: 'db' }),
  ];
  const index = new SelectorPolicyIndex(policies, ROOT);
  assert.deepEqual(index.matching('shop', labels({ app: 'web', version: 'v1' })), ['shop/web', 'root/web', 'shop/all']);
  assert.deepEqual(index.matching('shop', labels({ app: 'web', version: 'v2' })), [
    'shop/web',
    'shop/web-v2',
    'root/web',
    'shop/all',
  ]);
  assert.deepEqual(index.matching('other', labels({})), []);
  assert.deepEqual(index.matching(ROOT, labels({ app: 'web' })), ['root/web']);
  assert.deepEqual(index.matching('nowhere', labels({ app: 'web' })), ['root/web']);
});

const KEYS = ['app', 'version', 'tier'];
const VALUES = ['a', 'b', 'c'];
const labelsArb = fc
  .dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 })
  .map((o) => labels(o));
const policyArb = fc.record({
  namespace: fc.constantFrom('shop', 'other', ROOT),
  selector: fc.dictionary(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES), { maxKeys: 3 }).map(labels),
});

test('property: the index gives exactly the filtered list, in order', () => {
  fc.assert(
    fc.property(
      fc.array(policyArb, { maxLength: 30 }),
      fc.array(fc.tuple(fc.constantFrom('shop', 'other', ROOT, 'x'), labelsArb), { minLength: 1, maxLength: 5 }),
      (raw, pods) => {
        const policies = raw.map((p, i) => ({ ...p, key: `${p.namespace}/p${i}` }));
        const index = new SelectorPolicyIndex(policies, ROOT);
        for (const [ns, podLabels] of pods)
          assert.deepEqual(index.matching(ns, podLabels), reference(policies, ns, podLabels));
      },
    ),
    { numRuns: 2000, seed: 4 },
  );
});
