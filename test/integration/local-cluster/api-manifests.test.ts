// `ferry apply|delete -f` on an API cluster, through the local API server (real HTTPS): a directory of
// manifests is applied in dependency order (the Namespace before the objects in it, whatever the file
// order), kinds Ferry does not read pass through to the API, a second apply reports unchanged, an error in
// any Ferry kind sends nothing, and delete removes in reverse order.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RestMapper } from '../../../src/kube/rest-mapper.ts';
import { readManifestObjects, sendManifests } from '../../../src/local-cluster/api-manifests.ts';
import { LocalControllerError } from '../../../src/local-cluster/controller/errors.ts';
import { startLocalApi } from '../../helpers/local-api.ts';

const APP = `apiVersion: v1
kind: Service
metadata: {name: echo, namespace: shop}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: echo, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: echo}}
  template:
    metadata: {labels: {app: echo}}
    spec: {containers: [{name: app, image: ferry/http-echo}]}
`;
const NS = `apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}}
`;

async function dirWith(t: import('node:test').TestContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ferry-api-manifests-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('a directory is applied Namespace first, then unchanged, then deleted in reverse', async (t) => {
  const api = await startLocalApi(t);
  const mapper = await RestMapper.discover(api.client);
  const dir = await dirWith(t, { 'a-app.yaml': APP, 'z-ns.yaml': NS, 'notes.txt': 'not a manifest' });
  const lines: string[] = [];
  const read = await readManifestObjects([dir]);
  const first = await sendManifests(api.client, mapper, 'apply', read, (l) => lines.push(l));
  assert.deepEqual(
    first.map((r) => `${r.object} ${r.outcome}`),
    ['Namespace/shop created', 'Service/shop/echo created', 'Deployment/shop/echo created'],
  );
  const ns = await api.get('v1', 'Namespace', '', 'shop');
  assert.equal((ns.metadata as { labels: Record<string, string> }).labels['istio.io/dataplane-mode'], 'ambient');
  const again = await sendManifests(api.client, mapper, 'apply', await readManifestObjects([dir]), () => {});
  assert.deepEqual(
    again.map((r) => r.outcome),
    ['unchanged', 'unchanged', 'unchanged'],
  );
  const gone = await sendManifests(api.client, mapper, 'delete', await readManifestObjects([dir]), () => {});
  assert.deepEqual(
    gone.map((r) => `${r.object} ${r.outcome}`),
    ['Deployment/shop/echo deleted', 'Service/shop/echo deleted', 'Namespace/shop deleted'],
  );
});

test('an invalid Service sends nothing, and the error names the file, line and field', async (t) => {
  const api = await startLocalApi(t);
  const mapper = await RestMapper.discover(api.client);
  const bad = APP.replace('port: 80', 'port: 70000');
  const dir = await dirWith(t, { 'ns.yaml': NS, 'app.yaml': bad });
  const read = await readManifestObjects([dir]);
  assert.equal(read.problems.length, 1);
  assert.match(
    read.problems[0] ?? '',
    /app\.yaml:1: error Service\/shop\/echo spec\.ports\[0\]\.port: expected an integer 1–65535, got 70000/,
  );
  const lines: string[] = [];
  await assert.rejects(
    sendManifests(api.client, mapper, 'apply', read, (l) => lines.push(l)),
    (err: unknown) => {
      assert.ok(err instanceof LocalControllerError);
      assert.equal(err.code, 'FERRY_LOCAL_BAD_MANIFESTS');
      return true;
    },
  );
  assert.ok(lines.some((l) => /app\.yaml:1/.test(l)));
  assert.equal(
    (await api.list('v1', 'Namespace')).filter((n) => (n.metadata as { name: string }).name === 'shop').length,
    0,
  );
});

test('YAML syntax errors and objects without names are problems with their file and line', async (t) => {
  const dir = await dirWith(t, {
    'broken.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: {name: [\n',
    'noname.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n',
  });
  const read = await readManifestObjects([dir]);
  assert.equal(read.objects.length, 0);
  assert.ok(
    read.problems.some((p) => /broken\.yaml:\d+: YAML syntax error/.test(p)),
    read.problems.join('\n'),
  );
  assert.ok(
    read.problems.some((p) => /noname\.yaml:1: metadata\.name is missing/.test(p)),
    read.problems.join('\n'),
  );
  await assert.rejects(readManifestObjects([join(dir, 'missing.yaml')]), /no such file or directory/);
});
