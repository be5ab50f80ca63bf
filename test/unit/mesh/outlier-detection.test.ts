// Outlier detection (store/outlier-detection.ts): consecutive connect failures eject an endpoint for
// base × ejections (capped), at most maxEjectionPercent of a choice's candidates are left out (at least
// one), all are used when all are ejected (panic), a success forgets the endpoint, and an endpoint back from
// an ejection is ejected again by its first failure. Time is injected. Also: the load balancer with it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveServiceEndpoint } from '../../../src/mesh/load-balance.ts';
import { DEFAULT_OUTLIER_SETTINGS, type FailureVerdict, OutlierDetector } from '../../../src/mesh/outlier-detection.ts';
import { keyOf, meshView, service, workload } from '../../helpers/mesh-builders.ts';

const S = 1_000;

test('defaults: 3 consecutive failures, 30 s base, 300 s cap, 50 %', () => {
  assert.deepEqual(DEFAULT_OUTLIER_SETTINGS, {
    consecutiveFailures: 3,
    baseEjectionMs: 30 * S,
    maxEjectionMs: 300 * S,
    maxEjectionPercent: 50,
  });
});

test('failure sequences (table): verdicts and ejection state over time', () => {
  type Step = readonly [atMs: number, event: 'fail' | 'ok', expect: FailureVerdict['kind'] | 'none', ejected: boolean];
  const cases: { name: string; steps: Step[] }[] = [
    {
      name: 'two failures do not eject; the third does, for 30 s',
      steps: [
        [0, 'fail', 'counted', false],
        [10, 'fail', 'counted', false],
        [20, 'fail', 'ejected', true],
        [20 + 30 * S - 1, 'fail', 'already-ejected', true],
      ],
    },
    {
      name: 'a success in between starts the count over',
      steps: [
        [0, 'fail', 'counted', false],
        [1, 'fail', 'counted', false],
        [2, 'ok', 'none', false],
        [3, 'fail', 'counted', false],
        [4, 'fail', 'counted', false],
        [5, 'fail', 'ejected', true],
      ],
    },
    {
      name: 'back from an ejection: its first failure ejects it again, for 2 × 30 s',
      steps: [
        [0, 'fail', 'counted', false],
        [0, 'fail', 'counted', false],
        [0, 'fail', 'ejected', true],
        [30 * S, 'fail', 'ejected', true],
        [30 * S + 60 * S - 1, 'fail', 'already-ejected', true],
        [90 * S, 'fail', 'ejected', true], // third: 90 s
        [180 * S - 1, 'fail', 'already-ejected', true],
      ],
    },
    {
      name: 'back from an ejection and a success: three failures again',
      steps: [
        [0, 'fail', 'counted', false],
        [0, 'fail', 'counted', false],
        [0, 'fail', 'ejected', true],
        [30 * S, 'ok', 'none', false],
        [30 * S, 'fail', 'counted', false],
        [30 * S, 'fail', 'counted', false],
        [30 * S, 'fail', 'ejected', true],
      ],
    },
  ];
  for (const c of cases) {
    const d = new OutlierDetector();
    for (const [i, [at, event, expect, ejected]] of c.steps.entries()) {
      if (event === 'ok') d.recordSuccess('10.0.0.1:15008');
      else assert.equal(d.recordFailure('10.0.0.1:15008', at).kind, expect, `${c.name}: step ${i}`);
      assert.equal(d.isEjected('10.0.0.1:15008', at), ejected, `${c.name}: ejected after step ${i}`);
    }
  }
});

test('ejection time grows with each ejection and is capped at 300 s', () => {
  const d = new OutlierDetector({ ...DEFAULT_OUTLIER_SETTINGS, consecutiveFailures: 1 });
  let now = 0;
  const lengths: number[] = [];
  for (let i = 0; i < 12; i++) {
    const v = d.recordFailure('e', now);
    assert.equal(v.kind, 'ejected');
    if (v.kind === 'ejected') {
      lengths.push(v.untilMs - now);
      now = v.untilMs;
    }
  }
  assert.deepEqual(
    lengths.map((ms) => ms / S),
    [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300],
  );
  assert.equal(d.isEjected('e', now - 1), true);
  assert.equal(d.isEjected('e', now), false);
});

test('admit: ejected left out; at most 50 % (at least one); all ejected → all (panic)', () => {
  const ejectAt = (d: OutlierDetector, key: string, at: number) => {
    for (let i = 0; i < 3; i++) d.recordFailure(key, at);
  };
  const id = (k: string) => k;
  const cases: { name: string; endpoints: string[]; ejected: string[]; admitted: string[] }[] = [
    { name: 'nothing ejected', endpoints: ['a', 'b'], ejected: [], admitted: ['a', 'b'] },
    { name: 'one of two', endpoints: ['a', 'b'], ejected: ['b'], admitted: ['a'] },
    { name: 'both of two: panic', endpoints: ['a', 'b'], ejected: ['a', 'b'], admitted: ['a', 'b'] },
    { name: 'one of one: panic', endpoints: ['a'], ejected: ['a'], admitted: ['a'] },
    {
      name: 'two of three: only the first ejected (1 = max(1, 50 % of 3))',
      endpoints: ['a', 'b', 'c'],
      ejected: ['b', 'c'],
      admitted: ['a', 'c'],
    },
    { name: 'two of four: 50 %', endpoints: ['a', 'b', 'c', 'd'], ejected: ['a', 'd'], admitted: ['b', 'c'] },
    {
      name: 'three of four: the two ejected first',
      endpoints: ['a', 'b', 'c', 'd'],
      ejected: ['c', 'a', 'b'],
      admitted: ['b', 'd'],
    },
  ];
  for (const c of cases) {
    const d = new OutlierDetector();
    for (const [i, k] of c.ejected.entries()) ejectAt(d, k, i); // ejected in this order, 1 ms apart
    assert.deepEqual(d.admit(c.endpoints, id, 10), c.admitted, c.name);
    assert.deepEqual(d.admit(c.endpoints, id, 10 + 60 * S), c.endpoints, `${c.name}: after the ejection`);
  }
});

test('entries: what the admin dump shows; a success forgets the endpoint', () => {
  const d = new OutlierDetector();
  d.recordFailure('a', 0);
  for (let i = 0; i < 3; i++) d.recordFailure('b', 0);
  assert.deepEqual(d.entries(1), [
    { endpoint: 'a', consecutiveFailures: 1, ejections: 0, ejectedUntilMs: null },
    { endpoint: 'b', consecutiveFailures: 0, ejections: 1, ejectedUntilMs: 30 * S },
  ]);
  d.recordSuccess('a');
  d.recordSuccess('b');
  assert.deepEqual(d.entries(2), []);
});

test('load balancing with the detector: a down endpoint stops being chosen after 3 failed connects', () => {
  const svc = service('echo', '10.96.0.10', { ports: { 80: 8080 } });
  const sk = keyOf(svc);
  const up = workload('up', '10.0.0.1', { services: { [sk]: { 80: 8080 } } });
  const down = workload('down', '10.0.0.2', { services: { [sk]: { 80: 8080 } } });
  const view = meshView({ workloads: [up, down], services: [svc] });
  const d = new OutlierDetector();
  const hop = (ip: string) => `${ip}:15008`;
  let failed = 0;
  const picks: string[] = [];
  for (let i = 0; i < 100; i++) {
    const now = i * 10;
    const r = resolveServiceEndpoint(svc, 80, view.endpointsOf(svc), {
      random: () => (i % 2 === 0 ? 0.1 : 0.9), // alternates between the two while both are admitted
      network: '',
      admit: (healthy) => d.admit(healthy, (c) => hop(c.ip), now),
    });
    assert.ok(r.ok);
    picks.push(r.value.workload.name);
    if (r.value.workload.name === 'down') {
      failed++;
      d.recordFailure(hop(r.value.ip), now);
    } else d.recordSuccess(hop(r.value.ip));
  }
  assert.equal(failed, 3, picks.join(' '));
});
