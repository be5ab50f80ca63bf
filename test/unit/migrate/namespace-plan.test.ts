import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type MigrationPod,
  type MigrationStep,
  type NamespacePlanInput,
  type PodPhase,
  phaseAfter,
  planNamespaceMigration,
} from '../../../src/migrate/namespace-plan.ts';

const SIDECAR_NS = { 'istio-injection': 'enabled' };
const AMBIENT_NS = { 'istio.io/dataplane-mode': 'ambient' };

function input(over: Partial<NamespacePlanInput>): NamespacePlanInput {
  return {
    namespace: 'shop',
    direction: 'forward',
    pods: [],
    labels: SIDECAR_NS,
    blockers: [],
    missingObjects: [],
    ...over,
  };
}

const pod = (name: string, phase: PodPhase = 'sidecar', injected = true): MigrationPod => ({ name, injected, phase });

function steps(i: NamespacePlanInput): string[] {
  const plan = planNamespaceMigration(i);
  assert.equal(plan.kind, 'steps');
  return plan.kind === 'steps' ? plan.steps.map(show) : [];
}

function show(s: MigrationStep): string {
  return 'pod' in s ? `${s.kind} ${s.pod}` : s.kind;
}

const cases: { name: string; in: Partial<NamespacePlanInput>; want: string[] }[] = [
  {
    name: 'forward from sidecars: label first, then per pod enroll before the sidecar stops, in name order',
    in: { pods: [pod('echo-v2'), pod('client'), pod('echo-v1')] },
    want: [
      'label-ambient',
      'enroll-node client',
      'stop-sidecar client',
      'enroll-node echo-v1',
      'stop-sidecar echo-v1',
      'enroll-node echo-v2',
      'stop-sidecar echo-v2',
    ],
  },
  {
    name: 'forward resumed after a pod reached handover: enroll again (idempotent), then stop its sidecar',
    in: { labels: AMBIENT_NS, pods: [pod('a', 'ambient'), pod('b', 'handover'), pod('c')] },
    want: ['enroll-node b', 'stop-sidecar b', 'enroll-node c', 'stop-sidecar c'],
  },
  {
    name: 'forward already done: nothing',
    in: { labels: AMBIENT_NS, pods: [pod('a', 'ambient'), pod('b', 'ambient')] },
    want: [],
  },
  {
    name: 'pods created without a sidecar follow the label and get no step',
    in: { pods: [pod('plain', 'sidecar', false), pod('a')] },
    want: ['label-ambient', 'enroll-node a', 'stop-sidecar a'],
  },
  {
    name: 'both labels: the injection label is still removed',
    in: { labels: { ...SIDECAR_NS, ...AMBIENT_NS }, pods: [pod('a', 'ambient')] },
    want: ['label-ambient'],
  },
  {
    name: 'rollback: per pod the sidecar starts before the node lets go, the label goes back last',
    in: { direction: 'rollback', labels: AMBIENT_NS, pods: [pod('b', 'ambient'), pod('a', 'ambient')] },
    want: ['start-sidecar a', 'unenroll-node a', 'start-sidecar b', 'unenroll-node b', 'label-sidecar'],
  },
  {
    name: 'rollback resumed at handover: start the sidecar again (idempotent) before unenrolling',
    in: { direction: 'rollback', labels: AMBIENT_NS, pods: [pod('a', 'sidecar'), pod('b', 'handover')] },
    want: ['start-sidecar b', 'unenroll-node b', 'label-sidecar'],
  },
  {
    name: 'rollback of a half-done forward move: only the moved pods come back',
    in: { direction: 'rollback', labels: AMBIENT_NS, pods: [pod('a', 'ambient'), pod('b', 'sidecar')] },
    want: ['start-sidecar a', 'unenroll-node a', 'label-sidecar'],
  },
  {
    name: 'rollback done: nothing',
    in: { direction: 'rollback', labels: SIDECAR_NS, pods: [pod('a'), pod('b')] },
    want: [],
  },
  {
    name: 'rollback ignores blockers and missing objects (it must always be possible)',
    in: { direction: 'rollback', labels: SIDECAR_NS, blockers: ['EnvoyFilter x'], missingObjects: ['HTTPRoute y'] },
    want: [],
  },
];

for (const c of cases) {
  test(`planNamespaceMigration: ${c.name}`, () => {
    assert.deepEqual(steps(input(c.in)), c.want);
  });
}

test('forward is blocked by check blockers and unapplied converted objects, naming each', () => {
  const plan = planNamespaceMigration(
    input({ pods: [pod('a')], blockers: ['EnvoyFilter/shop/lua'], missingObjects: ['HTTPRoute/shop/reviews'] }),
  );
  assert.equal(plan.kind, 'blocked');
  assert.ok(plan.kind === 'blocked');
  assert.equal(plan.reasons.length, 2);
  assert.match(plan.reasons[0] ?? '', /EnvoyFilter\/shop\/lua/);
  assert.match(plan.reasons[1] ?? '', /HTTPRoute\/shop\/reviews/);
});

/** Runs a plan's steps, recording phases as the runner does, stopping after `stopAfter` steps. */
function simulate(
  pods: MigrationPod[],
  labels: Record<string, string>,
  direction: 'forward' | 'rollback',
  stopAfter = Number.POSITIVE_INFINITY,
): { pods: MigrationPod[]; labels: Record<string, string>; ran: number } {
  const plan = planNamespaceMigration(input({ pods, labels, direction }));
  assert.equal(plan.kind, 'steps');
  if (plan.kind !== 'steps') return { pods, labels, ran: 0 };
  let ran = 0;
  let current = pods;
  let currentLabels = labels;
  for (const s of plan.steps) {
    if (ran >= stopAfter) break;
    ran++;
    const phase = phaseAfter(s);
    if ('pod' in s && phase !== undefined) current = current.map((p) => (p.name === s.pod ? { ...p, phase } : p));
    if (s.kind === 'label-ambient') currentLabels = AMBIENT_NS;
    if (s.kind === 'label-sidecar') currentLabels = SIDECAR_NS;
  }
  return { pods: current, labels: currentLabels, ran };
}

test('a run stopped after any step and re-run ends in the same state as an uninterrupted one', () => {
  const start = [pod('a'), pod('b'), pod('c'), pod('plain', 'sidecar', false)];
  const whole = simulate(start, SIDECAR_NS, 'forward');
  assert.ok(whole.pods.filter((p) => p.injected).every((p) => p.phase === 'ambient'));
  for (let stop = 0; stop <= whole.ran; stop++) {
    const first = simulate(start, SIDECAR_NS, 'forward', stop);
    const resumed = simulate(first.pods, first.labels, 'forward');
    assert.deepEqual(resumed.pods, whole.pods, `stopped after ${stop}`);
    assert.deepEqual(resumed.labels, whole.labels);
    // Idempotent: a third run plans nothing.
    assert.equal(simulate(resumed.pods, resumed.labels, 'forward').ran, 0);
  }
});

test('rollback after a forward move stopped anywhere returns every moved pod to its sidecar', () => {
  const start = [pod('a'), pod('b'), pod('c')];
  const whole = simulate(start, SIDECAR_NS, 'forward');
  for (let stop = 0; stop <= whole.ran; stop++) {
    const partial = simulate(start, SIDECAR_NS, 'forward', stop);
    const back = simulate(partial.pods, partial.labels, 'rollback');
    assert.deepEqual(back.pods, start, `forward stopped after ${stop}`);
    assert.deepEqual(back.labels, SIDECAR_NS);
    assert.equal(simulate(back.pods, back.labels, 'rollback').ran, 0);
  }
});

test('every pod is captured at every step: each pod step changes one owner at a time', () => {
  // sidecar → handover (both) → ambient, never from sidecar straight to ambient or through "none".
  const owners: Record<PodPhase, string[]> = { sidecar: ['sidecar'], handover: ['sidecar', 'node'], ambient: ['node'] };
  const before = [pod('a')];
  const plan = planNamespaceMigration(input({ pods: before }));
  assert.ok(plan.kind === 'steps');
  let phase: PodPhase = 'sidecar';
  for (const s of plan.steps) {
    const next = phaseAfter(s);
    if (next === undefined) continue;
    assert.ok(owners[next].length > 0);
    assert.ok(
      owners[phase].some((o) => owners[next].includes(o)),
      `${phase} → ${next} keeps one owner`,
    );
    phase = next;
  }
  assert.equal(phase, 'ambient');
});
