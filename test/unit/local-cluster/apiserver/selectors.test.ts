// Label and field selectors as list/watch requests send them (kubectl -l, --field-selector, informers).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  matchesFieldRequirements,
  matchesLabelRequirements,
  parseFieldSelector,
  parseLabelSelector,
} from '../../../../src/local-cluster/apiserver/selectors.ts';

const labels = { app: 'web', tier: 'front', 'istio.io/dataplane-mode': 'ambient' };

const labelCases: [string, string, boolean][] = [
  ['empty selects all', '', true],
  ['equality', 'app=web', true],
  ['double equals', 'app==web', true],
  ['equality mismatch', 'app=db', false],
  ['inequality', 'app!=db', true],
  ['inequality on a missing key matches', 'missing!=x', true],
  ['in', 'tier in (front, back)', true],
  ['in mismatch', 'tier in (back)', false],
  ['notin', 'tier notin (back)', true],
  ['notin on a missing key matches', 'missing notin (a)', true],
  ['exists', 'app', true],
  ['exists missing', 'missing', false],
  ['does not exist', '!missing', true],
  ['does not exist but does', '!app', false],
  ['prefixed key', 'istio.io/dataplane-mode=ambient', true],
  ['AND of requirements', 'app=web,tier in (front),!missing', true],
  ['AND with one failing', 'app=web,tier=back', false],
  ['whitespace around', ' app = web , tier ', true],
];

for (const [name, selector, want] of labelCases) {
  test(`label selector: ${name} (${JSON.stringify(selector)})`, () => {
    const parsed = parseLabelSelector(selector);
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.equal(matchesLabelRequirements(parsed.value, labels), want);
  });
}

const badLabels: [string, string][] = [
  ['bad key', 'Bad Key=x'],
  ['bad value', 'app=not valid!'],
  ['empty in list', 'app in ()'],
  ['dangling comma', 'app=web,'],
  ['garbage', '=x'],
];
for (const [name, selector] of badLabels) {
  test(`label selector refused: ${name}`, () => {
    const parsed = parseLabelSelector(selector);
    assert.equal(parsed.ok, false);
  });
}

const pod = {
  metadata: { name: 'p1', namespace: 'demo' },
  spec: { nodeName: 'node-a' },
  status: { phase: 'Running' },
};

const fieldCases: [string, string, boolean][] = [
  ['name', 'metadata.name=p1', true],
  ['namespace', 'metadata.namespace=demo', true],
  ['node', 'spec.nodeName=node-a', true],
  ['other node', 'spec.nodeName=node-b', false],
  ['not on node', 'spec.nodeName!=node-b', true],
  ['phase and node', 'status.phase=Running,spec.nodeName==node-a', true],
];
for (const [name, selector, want] of fieldCases) {
  test(`field selector on pods: ${name}`, () => {
    const parsed = parseFieldSelector(selector, 'Pod');
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.equal(matchesFieldRequirements(parsed.value, pod), want);
  });
}

test('field selector: unbound pods select with spec.nodeName= (empty value)', () => {
  const parsed = parseFieldSelector('spec.nodeName=', 'Pod');
  assert.ok(parsed.ok);
  assert.equal(matchesFieldRequirements(parsed.value, { metadata: { name: 'x' }, spec: {} }), true);
  assert.equal(matchesFieldRequirements(parsed.value, pod), false);
});

test('field selector: a field the kind does not register is refused as the real server does', () => {
  const parsed = parseFieldSelector('spec.nodeName=a', 'Service');
  assert.deepEqual(parsed, { ok: false, error: 'field label not supported: spec.nodeName' });
});
