// policiesFor at the waypoint: the indexed lookup (frozen lists of 16 or more) returns exactly what the
// filter returns, in list order, for random policy lists, waypoints and destination Services.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { L7Policy } from '../../../src/waypoint/authz/compile.ts';
import { filterPolicies, policiesFor } from '../../../src/waypoint/authz/evaluate.ts';

const NAMESPACES = ['shop', 'web', 'istio-system'];
const NAMES = ['waypoint', 'echo', 'cart', 'other'];
const ref = fc.record({ namespace: fc.constantFrom(...NAMESPACES), name: fc.constantFrom(...NAMES) });
const policyArb = fc.record({
  namespace: fc.constantFrom(...NAMESPACES),
  targets: fc.array(
    fc.record({ kind: fc.constantFrom('Gateway' as const, 'Service' as const), name: fc.constantFrom(...NAMES) }),
    {
      maxLength: 3,
    },
  ),
});

test('property: the waypoint policy index returns the filtered list, in order', () => {
  fc.assert(
    fc.property(fc.array(policyArb, { maxLength: 60 }), ref, fc.option(ref), (raw, waypoint, service) => {
      const all: L7Policy[] = raw.map((p, i) => ({ ...p, key: `${p.namespace}/p${i}`, action: 'ALLOW', rules: [] }));
      const frozen = Object.freeze([...all]);
      const want = filterPolicies(all, waypoint, service);
      assert.deepEqual(policiesFor(frozen, waypoint, service), want);
      assert.deepEqual(policiesFor(frozen, waypoint, service), want); // the memoized index again
      assert.deepEqual(policiesFor(all, waypoint, service), want);
    }),
    { numRuns: 1500, seed: 11 },
  );
});
