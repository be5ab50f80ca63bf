// Garbage collection of owned objects (background propagation, finalizer-free): a ReplicaSet or Pod
// whose controller owner (a Deployment, ReplicaSet or DaemonSet) no longer exists is deleted, so
// `kubectl delete deployment` takes its ReplicaSets and then their Pods along. The caller lists
// dependents before owners: an owner created after the owner list was read cannot own a dependent that
// was listed before it, so a new object is never mistaken for an orphan. Pure.
import type { Json } from '../../kube/client.ts';
import { controllerOf, isDeleting, nameOf, namespaceOf, uidOf } from './objects.ts';

const OWNER_KINDS = new Set(['Deployment', 'ReplicaSet', 'DaemonSet']);

export interface Orphan {
  readonly kind: 'ReplicaSet' | 'Pod';
  readonly namespace: string;
  readonly name: string;
}

export function planGarbageCollection(
  dependents: { readonly replicaSets: readonly Json[]; readonly pods: readonly Json[] },
  owners: readonly Json[],
): Orphan[] {
  const live = new Set(owners.map(uidOf));
  const out: Orphan[] = [];
  const check = (kind: Orphan['kind'], o: Json): void => {
    const ref = controllerOf(o);
    if (ref === undefined || !OWNER_KINDS.has(ref.kind) || live.has(ref.uid) || isDeleting(o)) return;
    out.push({ kind, namespace: namespaceOf(o), name: nameOf(o) });
  };
  for (const rs of dependents.replicaSets) check('ReplicaSet', rs);
  for (const p of dependents.pods) check('Pod', p);
  return out;
}
