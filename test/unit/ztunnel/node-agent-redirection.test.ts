// The node agent's release steps (src/ztunnel/node-agent/redirection.ts), with a fake clock: a pod the
// ambient rule lets go is annotated disabled first, stays captured while its own ztunnel still sees it as
// HBONE, and is unenrolled only after the mesh shows TCP (or no workload) plus the grace for the other
// ztunnels; a controller that never publishes TCP holds it at most RELEASE_MAX_WAIT_MS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  planRelease,
  RELEASE_GRACE_MS,
  RELEASE_MAX_WAIT_MS,
  type ReleaseFacts,
} from '../../../src/ztunnel/node-agent/redirection.ts';

const T0 = 1_000_000;
const facts = (over: Partial<ReleaseFacts>): ReleaseFacts => ({
  annotation: 'disabled',
  meshProtocol: 'HBONE',
  progress: { startedAtMs: T0, tcpSinceMs: null },
  nowMs: T0,
  ...over,
});

test('annotation still enabled: disable it first, whatever the mesh says', () => {
  assert.deepEqual(planRelease(facts({ annotation: 'enabled', meshProtocol: 'TCP' })), { kind: 'annotate-disabled' });
  assert.deepEqual(planRelease(facts({ annotation: 'enabled', nowMs: T0 + RELEASE_MAX_WAIT_MS * 2 })), {
    kind: 'annotate-disabled',
  });
});

test('mesh still HBONE: wait for it, up to the deadline', () => {
  assert.deepEqual(planRelease(facts({})), {
    kind: 'await-mesh',
    untilMs: T0 + RELEASE_MAX_WAIT_MS,
    progress: { startedAtMs: T0, tcpSinceMs: null },
  });
  assert.deepEqual(planRelease(facts({ nowMs: T0 + RELEASE_MAX_WAIT_MS })), { kind: 'unenroll', why: 'timed-out' });
});

test('a release walks: disabled → HBONE (wait) → TCP (grace starts) → grace over (unenroll)', () => {
  let progress = { startedAtMs: T0, tcpSinceMs: null as number | null };
  let step = planRelease(facts({ progress, nowMs: T0 + 10 }));
  assert.equal(step.kind, 'await-mesh');
  step = planRelease(facts({ progress, meshProtocol: 'TCP', nowMs: T0 + 200 }));
  assert.deepEqual(step, {
    kind: 'await-grace',
    untilMs: T0 + 200 + RELEASE_GRACE_MS,
    progress: { startedAtMs: T0, tcpSinceMs: T0 + 200 },
  });
  if (step.kind === 'await-grace') progress = { ...step.progress };
  // The grace counts from when TCP was first seen, not from the latest pass.
  assert.equal(
    planRelease(facts({ progress, meshProtocol: 'TCP', nowMs: T0 + 200 + RELEASE_GRACE_MS - 1 })).kind,
    'await-grace',
  );
  assert.deepEqual(planRelease(facts({ progress, meshProtocol: 'TCP', nowMs: T0 + 200 + RELEASE_GRACE_MS })), {
    kind: 'unenroll',
    why: 'published-tcp',
  });
});

test('a workload no longer published counts as TCP; an absent annotation as not enabled', () => {
  const step = planRelease(facts({ annotation: undefined, meshProtocol: undefined, nowMs: T0 + 5 }));
  assert.deepEqual(step, {
    kind: 'await-grace',
    untilMs: T0 + 5 + RELEASE_GRACE_MS,
    progress: { startedAtMs: T0, tcpSinceMs: T0 + 5 },
  });
});

test('the mesh flipping back to HBONE restarts the grace', () => {
  const progress = { startedAtMs: T0, tcpSinceMs: T0 + 100 };
  assert.equal(planRelease(facts({ progress, meshProtocol: 'HBONE', nowMs: T0 + 2000 })).kind, 'await-mesh');
});
