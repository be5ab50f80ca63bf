// `ferry status` through the local controller's admin API: a bad manifest applied again and again shows
// its problem once, not once per apply (issue 9, item 6: 34 identical lines after repeated applies).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type MeshStatus, startAdminApi } from '../../src/local-cluster/controller/admin-api.ts';
import { startLocalController } from '../../src/local-cluster/controller/local-controller.ts';
import { type LocalMeshConfig, writeMeshConfig } from '../../src/local-cluster/controller/mesh-files.ts';
import { controllerRequest } from '../../src/local-cluster/controller-client.ts';
import { silentLogger } from '../../src/runtime/logger.ts';

const GOOD = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n';
// A deeply nested document: the kind of input that produced the repeated lines.
const DEEP = `apiVersion: v1\nkind: Service\nmetadata: {name: deep, namespace: apps}\nspec: {ports: ${'['.repeat(200)}${']'.repeat(200)}}\n`;

test('a bad manifest applied 20 times is listed once in the status', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferrytest-diagnostics-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'm.yaml'), GOOD);
  writeFileSync(join(dir, 'objects.jsonl'), '');
  const config: LocalMeshConfig = {
    cluster: 'diag',
    trustDomain: 'cluster.local',
    manifests: [join(dir, 'm.yaml')],
    controller: { xds: '127.0.0.1:0', ca: '127.0.0.1:0', admin: '127.0.0.1:0' },
    nodes: [],
  };
  await writeMeshConfig(dir, config);
  const controller = await startLocalController(dir, silentLogger);
  t.after(() => controller.close());
  const admin = await startAdminApi(controller);
  t.after(() => admin.close());
  const bad = join(dir, 'deep.yaml');
  writeFileSync(bad, DEEP);
  let first: readonly string[] = [];
  for (let i = 0; i < 20; i++) {
    const reply = (await controllerRequest(dir, 'POST', '/apply', { paths: [bad] })) as { diagnostics: string[] };
    assert.ok(reply.diagnostics.length > 0, 'the apply reports its problem each time');
    if (i === 0) first = reply.diagnostics;
  }
  const status = (await (await fetch(`${admin.url}/status`)).json()) as MeshStatus;
  assert.deepEqual(status.diagnostics, first);
});
