// The pods a cluster state asks for: every Pod object, plus `replicas` pods per Deployment named
// `<deployment>-<index>` (index 0..replicas-1; no ReplicaSet layer and no random suffix, so names are stable
// across restarts and readable in `ferry status`). A generated name that collides with a Pod object loses to
// the Pod, with a diagnostic. The orchestrator places exactly these pods. Pure.
import type { ClusterState } from '../sources/types.ts';
import type { Diagnostics, PodInstance } from './types.ts';

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** All pods of the cluster, sorted by key. */
export function expandPods(state: ClusterState, diags: Diagnostics): PodInstance[] {
  const pods = new Map<string, PodInstance>();
  for (const p of state.pods) {
    const key = podKey(p.metadata.namespace, p.metadata.name);
    pods.set(key, {
      key,
      name: p.metadata.name,
      namespace: p.metadata.namespace,
      labels: p.metadata.labels,
      annotations: p.metadata.annotations,
      spec: p.spec,
      owner: { kind: 'Pod', name: p.metadata.name },
      source: p,
    });
  }
  for (const d of state.deployments) {
    for (let i = 0; i < d.spec.replicas; i++) {
      const name = `${d.metadata.name}-${i}`;
      const key = podKey(d.metadata.namespace, name);
      const clash = pods.get(key);
      if (clash !== undefined) {
        const other = clash.owner.kind === 'Pod' ? `Pod ${name}` : `a pod of Deployment ${clash.owner.name}`;
        diags.error(
          d,
          'FERRY_TRANSLATE_CONFLICT',
          'metadata.name',
          `replica ${i} would be named ${name}, which ${other} already uses; replica skipped`,
        );
        continue;
      }
      const t = d.spec.template;
      pods.set(key, {
        key,
        name,
        namespace: d.metadata.namespace,
        labels: t.labels,
        annotations: t.annotations,
        spec: t.spec,
        owner: { kind: 'Deployment', name: d.metadata.name },
        source: d,
      });
    }
  }
  return [...pods.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
