// The cluster side of `ferry migrate` (`--kubeconfig`): lists, across all namespaces, the kinds the
// migration reads, through @kubernetes/client-node (discovery finds each kind's resource; a kind whose CRD
// is not installed, at any of Istio's served versions, is skipped). Each object becomes a document exactly
// as `-f` would give it (apiVersion and kind set). Read-only: nothing is written to the cluster.
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { MigrateError } from './errors.ts';
import type { InputDocument } from './inventory.ts';

/** Kind → apiVersions to try, newest first. */
const KINDS: readonly (readonly [string, readonly string[]])[] = [
  ['Namespace', ['v1']],
  ['Service', ['v1']],
  ['Deployment', ['apps/v1']],
  ['Pod', ['v1']],
  ['AuthorizationPolicy', ['security.istio.io/v1', 'security.istio.io/v1beta1']],
  ['PeerAuthentication', ['security.istio.io/v1', 'security.istio.io/v1beta1']],
  ['RequestAuthentication', ['security.istio.io/v1', 'security.istio.io/v1beta1']],
  ['VirtualService', ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']],
  ['DestinationRule', ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']],
  ['Sidecar', ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']],
  ['ServiceEntry', ['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']],
  ['EnvoyFilter', ['networking.istio.io/v1alpha3']],
  ['WasmPlugin', ['extensions.istio.io/v1alpha1']],
];

export async function readFromCluster(kubeconfigPath: string): Promise<InputDocument[]> {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(kubeconfigPath);
  } catch (err) {
    throw new MigrateError(
      'FERRY_MIGRATE_KUBE_FAILED',
      `cannot load kubeconfig ${kubeconfigPath}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const api = KubernetesObjectApi.makeApiClient(kc);
  const server = kc.getCurrentCluster()?.server ?? '?';
  const out: InputDocument[] = [];
  for (const [kind, versions] of KINDS) {
    for (const apiVersion of versions) {
      let items: readonly unknown[];
      try {
        items = (await api.list(apiVersion, kind)).items;
      } catch (err) {
        if (isNotServed(err)) continue; // this version (or the CRD) is not installed
        throw new MigrateError(
          'FERRY_MIGRATE_KUBE_FAILED',
          `listing ${kind} (${apiVersion}) from ${server}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      for (const item of items) {
        out.push({
          value: { ...(item as object), apiVersion, kind },
          origin: { file: `${server} ${kind}`, line: null },
        });
      }
      break;
    }
  }
  return out;
}

/** Discovery found no such resource (client-node says "Unrecognized API version and kind") or a 404. */
function isNotServed(err: unknown): boolean {
  const e = err as { code?: number; message?: string };
  return e.code === 404 || /Unrecognized API version and kind|404/.test(e.message ?? '');
}
