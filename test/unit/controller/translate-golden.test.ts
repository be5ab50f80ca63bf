// Golden files: test/fixtures/controller/<X>-in.yaml (Kubernetes manifests) → <X>-out.yaml (the MeshConfig in the
// ztunnel's static-config shape) and <X>-report.yaml (waypoints + diagnostics). UPDATE_GOLDEN=1 rewrites them.
// Placement is deterministic: pods in key order get 10.244.0.10, .11, … alternating node-a/node-b; services in
// key order get VIPs 10.96.0.10, .11, …. The output must parse back with parseLocalConfig (the ztunnel accepts it).
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { parseManifestText } from '../../../src/controller/sources/manifest-source.ts';
import { buildClusterState } from '../../../src/controller/sources/types.ts';
import { listPods, translateCluster } from '../../../src/controller/translate/translate.ts';
import type { PodPlacement, TranslateResult } from '../../../src/controller/translate/types.ts';
import { parseLocalConfig, serializeMeshConfig } from '../../../src/mesh/local-config/config.ts';

const DIR = new URL('../../fixtures/controller/', import.meta.url);
const UPDATE = process.env.UPDATE_GOLDEN === '1';

async function translateFixture(name: string): Promise<{ result: TranslateResult; parseDiagnostics: unknown[] }> {
  const file = `${name}-in.yaml`;
  const parsed = parseManifestText(await readFile(new URL(file, DIR), 'utf8'), file, {
    defaultNamespace: 'default',
    firstSequence: 0,
  });
  const state = buildClusterState(parsed.objects);
  const placement = new Map<string, PodPlacement>(
    listPods(state).map((p, i) => [p.key, { ip: `10.244.0.${10 + i}`, node: i % 2 === 0 ? 'node-a' : 'node-b' }]),
  );
  const vips = new Map(
    state.services.map((s, i) => [`${s.metadata.namespace}/${s.metadata.name}`, `10.96.0.${10 + i}`]),
  );
  return { result: translateCluster(state, { placement, vips }), parseDiagnostics: [...parsed.diagnostics] };
}

async function golden(file: string, actual: string): Promise<void> {
  const url = new URL(file, DIR);
  if (UPDATE) await writeFile(url, actual);
  const expected = await readFile(url, 'utf8').catch(() => assert.fail(`${file} missing: run with UPDATE_GOLDEN=1`));
  assert.equal(actual, expected, `${file} differs (UPDATE_GOLDEN=1 to accept)`);
}

for (const name of ['demo']) {
  test(`golden: ${name}-in.yaml translates to ${name}-out.yaml and the ztunnel accepts it`, async () => {
    const { result, parseDiagnostics } = await translateFixture(name);
    const out = stringify(serializeMeshConfig(result.config));
    await golden(
      `${name}-out.yaml`,
      `# Generated from ${name}-in.yaml by translate-golden.test.ts (UPDATE_GOLDEN=1)\n${out}`,
    );
    await golden(
      `${name}-report.yaml`,
      stringify({ parseDiagnostics, waypoints: result.waypoints, diagnostics: result.diagnostics }),
    );
    const back = parseLocalConfig(out, `${name}-out.yaml`);
    if (!back.ok) assert.fail(back.errors.map((e) => e.message).join('\n'));
    // Istio's LOCAL_XDS_PATH YAML has no port names or appProtocol (those travel over xDS only).
    const services = result.config.services.map((s) => ({
      ...s,
      ports: s.ports.map((p) => ({ servicePort: p.servicePort, targetPort: p.targetPort })),
    }));
    assert.deepEqual(back.config, { ...result.config, services });
  });
}
