// Shared by the controller unit tests: YAML text → ClusterState → translation with simple placement.
import { parseManifestText } from '../../src/controller/sources/manifest-source.ts';
import { buildClusterState, type ClusterState, type Diagnostic } from '../../src/controller/sources/types.ts';
import { listPods, translateCluster } from '../../src/controller/translate/translate.ts';
import type { TranslateResult, TranslateSettings } from '../../src/controller/translate/types.ts';

export function stateOf(yaml: string): { state: ClusterState; diagnostics: readonly Diagnostic[] } {
  const parsed = parseManifestText(yaml, 'test.yaml', { defaultNamespace: 'default', firstSequence: 0 });
  return { state: buildClusterState(parsed.objects), diagnostics: parsed.diagnostics };
}

/** Translates YAML with every pod placed (10.0.0.1, .2, … on node-a) and every Service given a VIP. */
export function translateYaml(
  yaml: string,
  settings: Partial<TranslateSettings> = {},
): TranslateResult & { parseDiagnostics: readonly Diagnostic[] } {
  const { state, diagnostics } = stateOf(yaml);
  const placement = new Map(listPods(state).map((p, i) => [p.key, { ip: `10.0.0.${i + 1}`, node: 'node-a' }]));
  const vips = new Map(
    state.services.map((s, i) => [`${s.metadata.namespace}/${s.metadata.name}`, `10.96.0.${i + 1}`]),
  );
  return { ...translateCluster(state, { placement, vips }, settings), parseDiagnostics: diagnostics };
}

export const ns = (name: string, labels = '{}') =>
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${name}, labels: ${labels}}\n---\n`;
