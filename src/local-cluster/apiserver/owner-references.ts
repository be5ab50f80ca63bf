// Garbage collection by ownerReferences, done at once in the owner's delete commit (the real server's
// garbage collector does it moments later, in the background): deleting an object deletes every object
// whose ownerReferences all point at objects that are being deleted, recursively (a Gateway takes its
// waypoint Deployment, that its ReplicaSets, …) once none of its owners exists any more. A dependent with
// another owner that stays is left as it is (the real collector would also drop the gone owner's reference). `propagationPolicy: Orphan` keeps
// the dependents. Dependents of a namespaced owner are looked for in its namespace only (Kubernetes
// forbids cross-namespace owners); of a cluster-scoped owner, everywhere.
import { isObj, metaOf, type Obj, own } from './json.ts';
import { apiVersionOf, type ResourceRegistry, storageKeyOf } from './resources.ts';
import type { Change, ObjectStore } from './store.ts';

export interface OwnedObject {
  readonly skey: string;
  readonly object: Obj;
}

/** Whether a DELETE's options ask to leave the dependents (`propagationPolicy: Orphan`, or `orphanDependents`). */
export function orphansDependents(options: unknown): boolean {
  if (!isObj(options)) return false;
  return options.propagationPolicy === 'Orphan' || options.orphanDependents === true;
}

/** Delete changes for everything `owners` own, transitively; never the owners themselves. */
export function dependentDeletions(
  store: ObjectStore,
  registry: ResourceRegistry,
  owners: readonly OwnedObject[],
): Change[] {
  if (owners.length === 0) return [];
  const namespaces = new Set(owners.map((o) => namespaceOf(o.object)));
  const candidates = namespaces.has('') ? candidatesIn(store, registry, undefined) : [];
  if (!namespaces.has('')) for (const ns of namespaces) candidates.push(...candidatesIn(store, registry, ns));
  const going = new Set(owners.map((o) => uidOf(o.object)));
  const out: Change[] = [];
  // The owners are deleted by the caller, also those among the candidates (deletecollection).
  const taken = new Set<OwnedObject>(candidates.filter((c) => going.has(uidOf(c.object))));
  // Fixed point: a dependent goes once all its owners go; its own dependents are then considered too.
  for (let grew = true; grew; ) {
    grew = false;
    for (const c of candidates) {
      if (taken.has(c)) continue;
      const refs = ownerRefsOf(c.object);
      const ns = namespaceOf(c.object);
      if (!refs.some((r) => going.has(r.uid))) continue;
      if (refs.some((r) => !going.has(r.uid) && ownerExists(store, registry, r, ns))) continue;
      taken.add(c);
      going.add(uidOf(c.object));
      out.push({
        op: 'delete',
        skey: c.skey,
        namespace: namespaceOf(c.object),
        name: String(own(metaOf(c.object), 'name')),
      });
      grew = true;
    }
  }
  return out;
}

/** Objects with at least one ownerReference, in `namespace` (all namespaced and cluster objects when undefined). */
function candidatesIn(store: ObjectStore, registry: ResourceRegistry, namespace: string | undefined): OwnedObject[] {
  const out: OwnedObject[] = [];
  const seen = new Set<string>();
  for (const r of registry.all()) {
    const skey = storageKeyOf(r);
    if (r.virtual || seen.has(skey) || (namespace !== undefined && !r.namespaced)) continue;
    seen.add(skey);
    for (const o of store.list(skey, namespace)) if (ownerRefsOf(o).length > 0) out.push({ skey, object: o });
  }
  return out;
}

interface OwnerRef {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
}

function ownerRefsOf(o: Obj): OwnerRef[] {
  const refs = own(metaOf(o), 'ownerReferences');
  if (!Array.isArray(refs)) return [];
  return refs
    .filter(isObj)
    .flatMap((r) =>
      typeof r.uid === 'string' && r.uid !== ''
        ? [{ apiVersion: String(r.apiVersion), kind: String(r.kind), name: String(r.name), uid: r.uid }]
        : [],
    );
}

/** An owner counts as present only if an object of its kind and name with its uid is stored. */
function ownerExists(store: ObjectStore, registry: ResourceRegistry, ref: OwnerRef, namespace: string): boolean {
  const t = registry.all().find((r) => apiVersionOf(r) === ref.apiVersion && r.kind === ref.kind);
  if (t === undefined) return false;
  const stored = store.get(storageKeyOf(t), t.namespaced ? namespace : '', ref.name);
  return stored !== undefined && uidOf(stored) === ref.uid;
}

function uidOf(o: Obj): string {
  return String(own(metaOf(o), 'uid') ?? '');
}

function namespaceOf(o: Obj): string {
  const ns = own(metaOf(o), 'namespace');
  return typeof ns === 'string' ? ns : '';
}
