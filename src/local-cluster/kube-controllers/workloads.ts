// Placeholder replaced below.
import type { Json, KubeClient } from '../../kube/client.ts';
import type { Logger } from '../../runtime/logger.ts';

export interface ClusterView {
  readonly pods: readonly Json[];
  readonly nodes: readonly Json[];
  readonly deployments: readonly Json[];
  readonly replicaSets: readonly Json[];
  readonly daemonSets: readonly Json[];
}

export async function reconcileWorkloads(_c: KubeClient, _v: ClusterView, _l: Logger, _s: AbortSignal): Promise<void> {}
