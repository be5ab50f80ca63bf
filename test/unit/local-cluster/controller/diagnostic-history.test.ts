// What `ferry status` keeps of manifest problems: the latest diagnostics per (file, object), capped; a bad
// file applied again replaces its earlier lines (issue 9: 34 identical lines after repeated applies).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Diagnostic, formatDiagnostic } from '../../../../src/controller/sources/types.ts';
import {
  keepLatestDiagnostics,
  MAX_KEPT_DIAGNOSTICS,
} from '../../../../src/local-cluster/controller/diagnostic-history.ts';

function diag(file: string | null, object: string, message: string, line: number | null = 1): Diagnostic {
  return { severity: 'error', code: 'FERRY_MANIFEST_YAML_SYNTAX', object, field: '', message, file, line };
}

const lines = (ds: readonly Diagnostic[]) => ds.map(formatDiagnostic);

interface Case {
  readonly name: string;
  readonly kept: readonly Diagnostic[];
  readonly batch: readonly Diagnostic[];
  readonly max?: number;
  readonly want: readonly Diagnostic[];
}

const deep = diag('/m/deep.yaml', '', 'nesting too deep');
const portA = diag('/m/a.yaml', 'Service/demo/a', 'bad port', 3);
const selA = diag('/m/a.yaml', 'Service/demo/a', 'bad selector', 4);
const other = diag('/m/a.yaml', 'Service/demo/b', 'bad port', 9);
const sameObjectOtherFile = diag('/m/b.yaml', 'Service/demo/a', 'bad port', 3);

const CASES: readonly Case[] = [
  { name: 'first batch is kept as is', kept: [], batch: [portA, selA], want: [portA, selA] },
  { name: 'the same file applied again replaces its lines', kept: [deep], batch: [deep], want: [deep] },
  {
    name: 'a new batch for an object replaces all its earlier lines',
    kept: [portA, selA, other],
    batch: [diag('/m/a.yaml', 'Service/demo/a', 'bad name', 3)],
    want: [other, diag('/m/a.yaml', 'Service/demo/a', 'bad name', 3)],
  },
  {
    name: 'other objects of the same file stay',
    kept: [other],
    batch: [portA],
    want: [other, portA],
  },
  {
    name: 'the same object from another file is another entry',
    kept: [portA],
    batch: [sameObjectOtherFile],
    want: [portA, sameObjectOtherFile],
  },
  { name: 'exact duplicates inside one batch appear once', kept: [], batch: [deep, deep, deep], want: [deep] },
  {
    name: 'several lines of one object in one batch are all kept',
    kept: [],
    batch: [portA, selA],
    want: [portA, selA],
  },
  {
    name: 'diagnostics without a file key on the object alone',
    kept: [diag(null, 'Pod/demo/x', 'old')],
    batch: [diag(null, 'Pod/demo/x', 'new')],
    want: [diag(null, 'Pod/demo/x', 'new')],
  },
  { name: 'the cap drops the oldest first', kept: [portA, other], batch: [deep], max: 2, want: [other, deep] },
  { name: 'a cap of 0 keeps nothing', kept: [portA], batch: [deep], max: 0, want: [] },
];

for (const c of CASES) {
  test(`keepLatestDiagnostics: ${c.name}`, () => {
    assert.deepEqual(lines(keepLatestDiagnostics(c.kept, c.batch, c.max)), lines(c.want));
  });
}

test('one bad file applied 34 times leaves one line, and the inputs are not mutated', () => {
  let kept: Diagnostic[] = [];
  for (let i = 0; i < 34; i++) kept = keepLatestDiagnostics(kept, [deep]);
  assert.deepEqual(lines(kept), lines([deep]));
  const before = [portA];
  keepLatestDiagnostics(before, [deep]);
  assert.deepEqual(before, [portA]);
});

test(`at most ${MAX_KEPT_DIAGNOSTICS} distinct problems are kept, the newest`, () => {
  let kept: Diagnostic[] = [];
  for (let i = 0; i < MAX_KEPT_DIAGNOSTICS + 25; i++) {
    kept = keepLatestDiagnostics(kept, [diag(`/m/f${i}.yaml`, '', `problem ${i}`)]);
  }
  assert.equal(kept.length, MAX_KEPT_DIAGNOSTICS);
  assert.equal(kept[0]?.message, 'problem 25');
  assert.equal(kept.at(-1)?.message, `problem ${MAX_KEPT_DIAGNOSTICS + 24}`);
});
