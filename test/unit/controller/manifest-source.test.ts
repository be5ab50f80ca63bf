// The manifest source: bad manifests (unknown kind, invalid selector, invalid port, duplicate name, bad name, YAML
// syntax error) are reported with file, line, object and field while the rest applies; directories, multi-doc,
// `kind: List`; apply/delete while running notify the subscriber; hostile input never throws.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManifestSource, parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { type ClusterState, type Diagnostic, formatDiagnostic } from '../../../src/controller/sources/types.ts';

const BAD = fileURLToPath(new URL('../../fixtures/controller/bad-in.yaml', import.meta.url));
const summary = (ds: readonly Diagnostic[]) => ds.map((d) => [d.code, d.object, d.field, d.line]);

test('bad manifests: each mistake is reported with file, line, object and field; the rest applies', async (t) => {
  const seen: Diagnostic[] = [];
  const source = new ManifestSource({ paths: [BAD], onDiagnostics: (d) => seen.push(...d) });
  t.after(() => source.close());
  let state: ClusterState | null = null;
  await source.start((s) => {
    state = s;
  });
  assert.deepEqual(summary(seen), [
    ['FERRY_MANIFEST_UNKNOWN_KIND', 'ConfigMap/demo/settings', 'kind', 6],
    [
      'FERRY_MANIFEST_INVALID_SELECTOR',
      'Deployment/demo/bad-selector',
      'spec.selector.matchExpressions[0].operator',
      10,
    ],
    ['FERRY_MANIFEST_INVALID_PORT', 'Service/demo/bad-port', 'spec.ports[0].port', 17],
    ['FERRY_MANIFEST_INVALID_NAME', 'Pod/demo/Bad_Name', 'metadata.name', 32],
    ['FERRY_MANIFEST_YAML_SYNTAX', '', '', 43],
    ['FERRY_MANIFEST_DUPLICATE', 'Pod/demo/good', 'metadata.name', 27],
  ]);
  assert.ok(seen.every((d) => d.file === BAD && d.severity === 'error'));
  assert.match(
    formatDiagnostic(seen[2]!),
    /bad-in\.yaml:17: error Service\/demo\/bad-port spec\.ports\[0\]\.port: expected an integer 1–65535, got 70000/,
  );
  const s = state as ClusterState | null;
  assert.deepEqual(
    s?.pods.map((p) => [p.metadata.name, p.spec.containers[0]?.name]),
    [['good', 'c']],
  );
  assert.deepEqual(
    s?.services.map((x) => x.metadata.name),
    ['ok'],
  );
  assert.deepEqual(
    s?.namespaces.map((x) => x.metadata.name),
    ['demo'],
  );
});

test('apply/delete while running: objects replaced by kind/ns/name, deletions, a bad apply changes nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-manifests-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: one}\n');
  await writeFile(
    join(dir, 'b.yml'),
    'apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ServiceAccount, metadata: {name: two}}\n',
  );
  await writeFile(join(dir, 'notes.txt'), 'not a manifest');
  const source = new ManifestSource({ paths: [dir] });
  t.after(() => source.close());
  const states: ClusterState[] = [];
  await source.start((s) => states.push(s));
  assert.deepEqual(
    states.at(-1)?.serviceAccounts.map((s) => `${s.metadata.namespace}/${s.metadata.name}`),
    ['default/one', 'default/two'],
  );

  const upd = join(dir, 'update.yaml');
  await writeFile(upd, 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: one, labels: {v: "2"}}\n');
  const applied = await source.apply([upd]);
  assert.deepEqual(applied.changed, ['ServiceAccount/default/one']);
  assert.equal(states.length, 2);
  assert.equal(states.at(-1)?.serviceAccounts[0]?.metadata.labels.get('v'), '2');

  const broken = join(dir, 'broken.yaml');
  await writeFile(broken, 'apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n');
  const bad = await source.apply([broken, join(dir, 'missing.yaml')]);
  assert.deepEqual(bad.changed, []);
  assert.deepEqual(bad.diagnostics.map((d) => d.code).sort(), [
    'FERRY_MANIFEST_INVALID_FIELD',
    'FERRY_MANIFEST_READ_FAILED',
  ]);
  assert.equal(states.length, 2, 'a failed apply does not notify');

  const deleted = await source.delete([join(dir, 'b.yml'), upd]);
  assert.deepEqual(deleted.changed, ['ServiceAccount/default/two', 'ServiceAccount/default/one']);
  assert.deepEqual(states.at(-1)?.serviceAccounts, []);
  const again = await source.delete([upd]);
  assert.deepEqual(
    again.diagnostics.map((d) => [d.severity, d.code]),
    [['warning', 'FERRY_MANIFEST_NOT_FOUND']],
  );
});

test('hostile input: garbage, alias bombs, odd keys and huge numbers never throw', () => {
  const inputs = [
    '\u0000\u0001\u0002',
    '{{{{',
    '- - - - -',
    'a: &a [*a, *a]',
    `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`,
    'apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {__proto__: x, constructor: y}}\nspec: {containers: [{name: c}]}',
    'apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 1e400}], selector: [1]}',
    'apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n---\n---\n...\n',
    '42',
    'kind: Pod',
  ];
  for (let i = 0; i < 200; i++)
    inputs.push(Buffer.from(Array.from({ length: 64 }, (_, j) => (i * 31 + j * 17) % 256)).toString('latin1'));
  for (const text of inputs) {
    const r = parseManifestText(text, 'x.yaml', { defaultNamespace: 'default', firstSequence: 0 });
    for (const d of r.diagnostics) assert.equal(typeof d.message, 'string');
  }
  const proto = parseManifestText(inputs[5]!, 'x.yaml', { defaultNamespace: 'default', firstSequence: 0 });
  assert.equal(Object.getPrototypeOf({}).x, undefined);
  assert.ok(proto.diagnostics.length > 0 || proto.objects.length === 1);
});
