// Bad manifests through the CLI. `ferry apply -f` of an unknown kind, an invalid selector, an invalid port,
// a duplicate name or a YAML syntax error: a clear error naming the file (and line) and the object, a
// non-zero exit, and the running mesh unchanged (nothing applied, not even the valid half of a file; the
// traffic still flows as before). `ferry up -f` with a YAML syntax error refuses before creating anything.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { MeshStatus } from '../../src/local-cluster/controller/admin-api.ts';
import { privilegedTest } from '../../testkit/privileged.ts';
import { DEMO, FerryCli, podOf } from '../helpers/cluster-cli.ts';

const cli = new FerryCli('bad');
test.after(() => cli.remove());

interface Case {
  readonly file: string;
  readonly yaml: string;
  /** The error line: file:line, object and code. */
  readonly error: RegExp;
}

const CASES: readonly Case[] = [
  {
    file: 'unknown-kind.yaml',
    yaml: 'apiVersion: v1\nkind: Frobnicator\nmetadata: {name: frob, namespace: demo}\n',
    error: /unknown-kind\.yaml:1: error Frobnicator\/demo\/frob .*unknown kind.*\[FERRY_MANIFEST_UNKNOWN_KIND\]/,
  },
  {
    file: 'bad-selector.yaml',
    yaml: [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: bad-selector, namespace: demo}',
      'spec:',
      '  selector: {matchLabels: {"not a key!": echo}}',
      '  action: DENY',
      '  rules: [{}]',
    ].join('\n'),
    error:
      /bad-selector\.yaml:1: error AuthorizationPolicy\/demo\/bad-selector spec\.selector.*\[FERRY_MANIFEST_INVALID_SELECTOR\]/,
  },
  {
    file: 'bad-port.yaml',
    yaml: [
      // A valid DENY-all first: an all-or-nothing apply must not apply it either.
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: deny-all, namespace: demo}',
      'spec: {action: DENY, rules: [{}]}',
      '---',
      'apiVersion: v1',
      'kind: Service',
      'metadata: {name: bad-port, namespace: demo}',
      'spec:',
      '  selector: {app: echo}',
      '  ports: [{port: 70000}]',
    ].join('\n'),
    error:
      /bad-port\.yaml:6: error Service\/demo\/bad-port spec\.ports\[0\]\.port: .*70000 \[FERRY_MANIFEST_INVALID_PORT\]/,
  },
  {
    file: 'duplicate.yaml',
    yaml: [
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: dup, namespace: demo}',
      'spec: {action: DENY, rules: [{}]}',
      '---',
      'apiVersion: security.istio.io/v1',
      'kind: AuthorizationPolicy',
      'metadata: {name: dup, namespace: demo}',
      'spec: {action: DENY, rules: [{}]}',
    ].join('\n'),
    error:
      /duplicate\.yaml:6: error AuthorizationPolicy\/demo\/dup metadata\.name: duplicate name: already defined at .*duplicate\.yaml:1 \[FERRY_MANIFEST_DUPLICATE\]/,
  },
  {
    file: 'syntax.yaml',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata: {name: broken, namespace: demo\nspec: [\n',
    error: /syntax\.yaml:\d+: error YAML syntax error: .*\[FERRY_MANIFEST_YAML_SYNTAX\]/,
  },
];

/** What a user sees of the mesh (diagnostics aside: they are the history of failed applies). */
function meshView(s: MeshStatus): unknown {
  return { revision: s.revision, pods: s.pods, services: s.services, policies: s.policies, waypoints: s.waypoints };
}

privilegedTest('ferry apply of bad manifests: clear errors, non-zero exit, the mesh unchanged', async (t) => {
  const { cluster } = await cli.up(t, 'apply', DEMO);
  const label = await cli.run(['label', '--cluster', cluster, 'namespace', 'demo', 'istio.io/dataplane-mode=ambient']);
  assert.equal(label.code, 0, label.stdout + label.stderr);
  const before = await cli.status(cluster);
  const echo = podOf(before, 'demo', 'echo-v1-0');
  const dir = join(cli.stateRoot, 'bad-manifests');
  mkdirSync(dir);

  for (const c of CASES) {
    const path = join(dir, c.file);
    writeFileSync(path, c.yaml);
    const r = await cli.run(['apply', '--cluster', cluster, '-f', path]);
    assert.equal(r.code, 1, `${c.file}: exit code\n${r.stdout}${r.stderr}`);
    assert.match(r.stdout, c.error, c.file);
    assert.match(r.stdout, /nothing configured: fix the errors above \(the mesh is unchanged\)/, c.file);
    assert.doesNotMatch(r.stdout, / configured\n/, `${c.file}: nothing applied`);
    assert.deepEqual(meshView(await cli.status(cluster)), meshView(before), `${c.file}: mesh unchanged`);
    const ok = await cli.curl(cluster, 'demo/client-0', `http://${echo.ip}:8080/`);
    assert.ok(ok.echo !== null, `${c.file}: traffic still flows: ${ok.run.stdout}${ok.run.stderr}`);
    assert.equal(ok.echo.peer.address, '127.0.0.6');
  }

  // All of them at once: every error is listed, each naming its file.
  const all = await cli.run(['apply', '--cluster', cluster, '-f', dir]);
  assert.equal(all.code, 1);
  for (const c of CASES) assert.match(all.stdout, c.error);
  // `ferry delete` of a bad file is all or nothing too.
  const del = await cli.run(['delete', '--cluster', cluster, '-f', join(dir, 'bad-port.yaml')]);
  assert.equal(del.code, 1);
  assert.match(del.stdout, /nothing deleted/);
  assert.deepEqual(meshView(await cli.status(cluster)), meshView(before));
});

privilegedTest('ferry up -f with a YAML syntax error fails before creating anything', async (t) => {
  const dir = join(cli.stateRoot, 'up-syntax');
  cpSync(DEMO, dir, { recursive: true });
  writeFileSync(join(dir, 'zz-broken.yaml'), 'apiVersion: v1\nkind: Service\nmetadata: {name: x, namespace: demo\n');
  const cluster = `ferrytest-${process.pid}-upsyntax`;
  t.after(async () => {
    await cli.run(['down', '--cluster', cluster]); // only if the test failed and something was created
  });
  const up = await cli.run(['up', '-f', dir, '--nodes', '2', '--cluster', cluster]);
  assert.equal(up.code, 1, up.stdout + up.stderr);
  assert.match(up.stdout, /zz-broken\.yaml:\d+: error YAML syntax error: .*\[FERRY_MANIFEST_YAML_SYNTAX\]/);
  assert.match(up.stderr, /FERRY_LOCAL_BAD_MANIFESTS: \d+ error\(s\) in the manifests .*nothing was created/);
  assert.doesNotMatch(up.stdout, /creating cluster/);
  assert.deepEqual(cli.leftovers(cluster), [], 'nothing of the cluster exists');
});
