// The real `ferry migrate` CLI (`node src/cli/main.ts migrate …`) on the Bookinfo fixtures: the table and
// exit code with an EnvoyFilter (1) and without blockers (0), --json, convert to stdout with its report on
// stderr, convert -o DIR, and the errors a user gets for unreadable input (2).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { parseManifestText } from '../../src/controller/sources/manifest-source.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const F = new URL('../fixtures/migrate/', import.meta.url).pathname;
const BASE = ['-f', `${F}bookinfo/platform.yaml`, '-f', `${F}bookinfo/destination-rules.yaml`];

async function ferry(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, 'migrate', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

test('migrate check with an EnvoyFilter: the blocker in the table, exit 1', async () => {
  const r = await ferry(
    'check',
    ...BASE,
    '-f',
    `${F}bookinfo/scenario-reviews-jason.yaml`,
    '-f',
    `${F}bookinfo/blockers.yaml`,
  );
  assert.equal(r.stderr, '');
  assert.equal(r.code, 1);
  const lines = r.stdout.split('\n');
  assert.equal(lines[0], 'namespace bookinfo');
  assert.match(
    lines[1] ?? '',
    /^ {2}BLOCKER +envoy-filter +EnvoyFilter\/bookinfo\/reviews-lua +spec +EnvoyFilter patches sidecar Envoy/,
  );
  assert.match(r.stdout, /WARNING +sidecar +Sidecar\/bookinfo\/productpage/);
  assert.match(
    r.stdout,
    /\n1 blocker\(s\), 1 warning\(s\), \d+ converted\/unchanged item\(s\) \(--verbose lists them\); 7 object\(s\) to write\nnot ready: resolve the blockers first\n$/,
  );
});

test('migrate check --json without blockers: exit 0, findings per namespace', async () => {
  const r = await ferry('check', ...BASE, '-f', `${F}bookinfo/scenario-reviews-50-v3.yaml`, '--json');
  assert.equal(r.code, 0);
  const report = JSON.parse(r.stdout) as {
    summary: { blocker: number; warning: number; info: number };
    namespaces: { namespace: string; findings: { severity: string; object: string; category: string }[] }[];
  };
  assert.deepEqual(report.summary, { blocker: 0, warning: 0, info: 8 });
  assert.deepEqual(
    report.namespaces.map((n) => n.namespace),
    ['bookinfo'],
  );
  assert.ok(
    report.namespaces[0]?.findings.some(
      (f) => f.object === 'VirtualService/bookinfo/reviews' && f.category === 'route',
    ),
  );
});

test('migrate convert: YAML on stdout with the not-converted block, report on stderr', async () => {
  const r = await ferry('convert', ...BASE, '-f', `${F}bookinfo/scenario-ratings-retries.yaml`);
  assert.equal(r.code, 0);
  assert.match(
    r.stdout,
    /# from: VirtualService\/bookinfo\/ratings\n# ferry: not converted:\n# {3}- spec\.http\[0\]\.retries\.retryOn: unavailable: a gRPC status \(in trailers\); an HTTPRoute retries on HTTP statuses only\napiVersion: gateway\.networking\.k8s\.io\/v1\nkind: HTTPRoute\n/,
  );
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string } });
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.name}`),
    [
      'Namespace/bookinfo',
      'Gateway/waypoint',
      'Service/reviews-v2',
      'Service/ratings-v1',
      'HTTPRoute/reviews',
      'HTTPRoute/ratings',
    ],
  );
  assert.match(r.stderr, /WARNING +route +VirtualService\/bookinfo\/ratings +spec\.http\[0\]\.retries\.retryOn/);
  assert.match(r.stderr, /ready: `ferry migrate convert` writes the ambient configuration\n$/);
});

test('migrate convert -o DIR: one file per namespace that Ferry reads back without a diagnostic, and report.json', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferrytest-migrate-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const r = await ferry(
    'convert',
    ...BASE,
    '-f',
    `${F}bookinfo/scenario-reviews-jason.yaml`,
    '-f',
    `${F}bookinfo/policies.yaml`,
    '-f',
    `${F}httpbin/httpbin.yaml`,
    '-o',
    dir,
  );
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.deepEqual((await readdir(dir)).sort(), ['bookinfo.yaml', 'httpbin.yaml', 'report.json']);
  for (const ns of ['bookinfo', 'httpbin']) {
    const parsed = parseManifestText(await readFile(join(dir, `${ns}.yaml`), 'utf8'), `${ns}.yaml`, {
      defaultNamespace: 'default',
      firstSequence: 0,
    });
    assert.deepEqual(parsed.diagnostics, [], ns);
    assert.ok(parsed.objects.every((o) => o.metadata.namespace === ns || o.kind === 'Namespace'));
  }
  const report = JSON.parse(await readFile(join(dir, 'report.json'), 'utf8')) as { summary: { blocker: number } };
  assert.equal(report.summary.blocker, 0);
});

test("migrate convert -n: only that namespace's objects", async () => {
  const r = await ferry(
    'convert',
    ...BASE,
    '-f',
    `${F}bookinfo/scenario-reviews-50-v3.yaml`,
    '-f',
    `${F}httpbin/httpbin.yaml`,
    '-n',
    'httpbin',
  );
  assert.equal(r.code, 0);
  const docs = parseAllDocuments(r.stdout).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string } },
  );
  assert.deepEqual(
    docs.map((d) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`),
    [
      'Namespace//httpbin',
      'Gateway/httpbin/waypoint',
      'Service/httpbin/httpbin-v1',
      'Service/httpbin/httpbin-v2',
      'HTTPRoute/httpbin/httpbin',
    ],
  );
  assert.doesNotMatch(r.stderr, /bookinfo/);
});

test('migrate: a missing file is FERRY_MIGRATE_READ_FAILED (exit 2); no input or no subcommand is a usage error (exit 2); namespace without a cluster', async () => {
  const missing = await ferry('check', '-f', `${F}does-not-exist.yaml`);
  assert.equal(missing.code, 2);
  assert.equal(
    missing.stderr,
    `ferry migrate: FERRY_MIGRATE_READ_FAILED: cannot read ${F}does-not-exist.yaml: ENOENT\n`,
  );
  const none = await ferry('check');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give the configuration with -f FILE\|DIR/);
  const wrong = await ferry('frobnicate', 'bookinfo');
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /^usage: ferry migrate check/);
  // `namespace` moves pods of a running local cluster: none of that name here.
  const noCluster = await ferry('namespace', 'bookinfo', '--cluster', `ferrytest-none-${process.pid}`);
  assert.equal(noCluster.code, 1);
  assert.match(noCluster.stderr, /FERRY_CLUSTER_NOT_FOUND: no local cluster at .*ferrytest-none-/);
  const usage = await ferry('namespace');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^usage: ferry migrate namespace NS/);
});
