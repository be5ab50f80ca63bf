// The ReplicaSet controller as a pure plan: the pods a ReplicaSet owns (controller owner reference),
// how many to create or which to delete to reach spec.replicas, and the status to report. Deletion
// prefers, as Kubernetes does: unscheduled, then pending, then not ready, then the newest pods. Pods
// being deleted or finished do not count, so a scale-down never deletes twice.
import type { Json } from '../../kube/client.ts';
import {
  controllerOf,
  creationOf,
  generationOf,
  isActivePod,
  isPodReady,
  labelsOf,
  namespaceOf,
  podPhase,
  selectorMatches,
  specOf,
  uidOf,
} from './objects.ts';

export interface ReplicaSetPlan {
  readonly create: number;
  /** Pods to delete, by name. */
  readonly delete: readonly string[];
  readonly status: Json;
}

export function ownedPods(owner: Json, pods: readonly Json[]): Json[] {
  const uid = uidOf(owner);
  const ns = namespaceOf(owner);
  return pods.filter((p) => namespaceOf(p) === ns && controllerOf(p)?.uid === uid);
}

export function desiredReplicas(o: Json): number {
  const r = specOf(o).replicas;
  return typeof r === 'number' && Number.isInteger(r) && r >= 0 ? r : 1;
}

export function planReplicaSet(rs: Json, pods: readonly Json[]): ReplicaSetPlan {
  const active = ownedPods(rs, pods).filter(isActivePod);
  const want = desiredReplicas(rs);
  const diff = active.length - want;
  const victims = diff > 0 ? [...active].sort(deletionOrder).slice(0, diff) : [];
  const ready = active.filter(isPodReady).length;
  const selector = specOf(rs).selector;
  return {
    create: diff < 0 ? -diff : 0,
    delete: victims.map((p) => String((p.metadata as Json).name)),
    status: {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => selectorMatches(selector, labelsOf(p))).length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: generationOf(rs),
    },
  };
}

/** Sorts pods so that the first ones are the best to delete. */
export function deletionOrder(a: Json, b: Json): number {
  const rank = (p: Json): number[] => {
    const node = specOf(p).nodeName;
    return [typeof node === 'string' && node !== '' ? 1 : 0, podPhase(p) === 'Pending' ? 0 : 1, isPodReady(p) ? 1 : 0];
  };
  const [ra, rb] = [rank(a), rank(b)];
  for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return (ra[i] ?? 0) - (rb[i] ?? 0);
  // Newer first (creationTimestamp has second precision; the name breaks ties deterministically).
  const ca = creationOf(a);
  const cb = creationOf(b);
  if (ca !== cb) return ca < cb ? 1 : -1;
  return String((a.metadata as Json).name) < String((b.metadata as Json).name) ? 1 : -1;
}
