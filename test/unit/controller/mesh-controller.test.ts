// The controller loop: manifests → placement → translation → publish, and the CA's node-bound question.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MeshController, type PlacementProvider } from '../../../src/controller/controller.ts';
import { ManifestSource } from '../../../src/controller/sources/manifest-source.ts';
import { spiffeId } from '../../../src/identity/spiffe-id.ts';
import type { MeshConfig } from '../../../src/mesh/types.ts';
import { silentLogger } from '../../../src/runtime/logger.ts';

const FIXTURE = new URL('../../fixtures/controller/demo-in.yaml', import.meta.url).pathname;

/** Pods alternate between two nodes in arrival order; VIPs count up. Stable per key. */
function roundRobinPlacement(): PlacementProvider {
  const placed = new Map<string, { ip: string; node: string }>();
  const vips = new Map<string, string>();
  return {
    place(pods, state) {
      for (const p of pods) {
        if (!placed.has(p.key)) {
          const n = placed.size;
          placed.set(p.key, { ip: `10.244.${(n % 2) + 1}.${10 + n}`, node: `node-${(n % 2) + 1}` });
        }
      }
      for (const s of state.services) {
        const key = `${s.metadata.namespace}/${s.metadata.name}`;
        if (!vips.has(key)) vips.set(key, `10.96.0.${vips.size + 1}`);
      }
      return { placement: placed, vips };
    },
  };
}

test('manifests are translated and published; apply publishes the change; the CA question follows placement', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ferrytest-controller-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await copyFile(FIXTURE, join(dir, 'demo.yaml'));
  const published: MeshConfig[] = [];
  const source = new ManifestSource({ paths: [join(dir, 'demo.yaml')] });
  const controller = new MeshController({
    source,
    placement: roundRobinPlacement(),
    publisher: { publish: (c) => published.push(c) },
    log: silentLogger,
  });
  t.after(() => controller.close());
  await controller.start();
  assert.equal(published.length, 1);
  const first = published[0]!;
  const client = first.workloads.find((w) => w.name === 'client-0');
  assert.ok(client, 'the client Deployment became a workload');
  assert.equal(client.protocol, 'HBONE', 'namespace demo is enrolled');
  assert.ok(first.services.some((s) => s.hostname === 'echo.demo.svc.cluster.local'));

  const clientId = spiffeId('cluster.local', 'demo', 'client');
  assert.equal(controller.identityOnNode(client.node, clientId), true);
  const otherNode = client.node === 'node-1' ? 'node-2' : 'node-1';
  assert.equal(controller.identityOnNode(otherNode, clientId), false, 'no client pod on the other node');

  await writeFile(
    join(dir, 'extra.yaml'),
    'apiVersion: v1\nkind: Pod\nmetadata: {name: extra, namespace: demo}\nspec:\n  containers: [{name: a, image: ferry/echo}]\n',
  );
  await source.apply([join(dir, 'extra.yaml')]);
  await controller.settled();
  assert.equal(published.length, 2);
  assert.ok(published[1]!.workloads.some((w) => w.name === 'extra'));
  assert.equal(controller.revision, 2);
});
