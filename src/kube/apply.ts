// Client-side apply of manifests through the API, the part `ferry apply|delete|label` need on a cluster
// that serves the Kubernetes API: create when absent, else a JSON merge patch of what the manifest sets
// (status is never sent: it belongs to controllers), delete by name, and label changes as a merge patch with
// `null` for removals (what `kubectl label` sends). Unlike `kubectl apply` there is no last-applied
// annotation, so a field removed from a manifest is not removed from the live object; maps and scalars the
// manifest sets win, and lists are replaced whole (merge patch semantics). Every object is checked for the
// fields a path needs before anything is sent, and an error names the object and what was wrong.
import { isJson, type Json, type KubeClient } from './client.ts';
import { KubeError } from './errors.ts';
import type { RestMapper } from './rest-mapper.ts';

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string } & Json;
  readonly [field: string]: unknown;
}

const MERGE_PATCH = 'application/merge-patch+json';

/** `Kind/ns/name` (or `Kind/name` when cluster-scoped), as messages name objects. */
export function describeObject(o: Pick<ManifestObject, 'kind' | 'metadata'>): string {
  const ns = o.metadata.namespace;
  return ns === undefined || ns === '' ? `${o.kind}/${o.metadata.name}` : `${o.kind}/${ns}/${o.metadata.name}`;
}

/** Checks the shape every request needs; throws FERRY_KUBE_BAD_OBJECT naming the object and the field. */
export function asManifestObject(value: unknown, where: string): ManifestObject {
  const bad = (field: string, why: string) => new KubeError('FERRY_KUBE_BAD_OBJECT', `${where}: ${field} ${why}`);
  if (!isJson(value)) throw bad('the document', 'is not an object');
  if (typeof value.apiVersion !== 'string' || value.apiVersion === '') throw bad('apiVersion', 'is missing');
  if (typeof value.kind !== 'string' || value.kind === '') throw bad('kind', 'is missing');
  const meta = value.metadata;
  if (!isJson(meta) || typeof meta.name !== 'string' || meta.name === '') throw bad('metadata.name', 'is missing');
  if (meta.namespace !== undefined && typeof meta.namespace !== 'string') {
    throw bad('metadata.namespace', 'is not a string');
  }
  return value as ManifestObject;
}

/** Creates or merge-patches one object; the outcome says which (unchanged: the server changed nothing). */
export async function applyObject(client: KubeClient, mapper: RestMapper, obj: ManifestObject): Promise<ApplyOutcome> {
  const path = mapper.pathFor(refOf(mapper, obj));
  const { status: _status, ...desired } = obj;
  let current: Json;
  try {
    current = await client.get(path);
  } catch (err) {
    if (!(err instanceof KubeError) || err.status !== 404) throw err;
    await client.request('POST', mapper.pathFor({ ...refOf(mapper, obj), name: undefined }), { json: desired });
    return 'created';
  }
  const before = resourceVersionOf(current);
  const { resourceVersion: _rv, ...meta } = desired.metadata;
  const after = await client.request('PATCH', path, {
    json: { ...desired, metadata: meta },
    contentType: MERGE_PATCH,
  });
  return resourceVersionOf(after) === before ? 'unchanged' : 'configured';
}

/** Deletes one object by name; false when it did not exist. */
export async function deleteObject(client: KubeClient, mapper: RestMapper, obj: ManifestObject): Promise<boolean> {
  try {
    await client.request('DELETE', mapper.pathFor(refOf(mapper, obj)));
    return true;
  } catch (err) {
    if (err instanceof KubeError && err.status === 404) return false;
    throw err;
  }
}

/** Sets (`value`) or removes (`null`) labels of one live object, as `kubectl label` does. */
export async function patchLabels(
  client: KubeClient,
  mapper: RestMapper,
  ref: { apiVersion: string; kind: string; namespace?: string; name: string },
  changes: ReadonlyMap<string, string | null>,
): Promise<Json> {
  const labels = Object.fromEntries(changes);
  return client.request('PATCH', mapper.pathFor(ref), { json: { metadata: { labels } }, contentType: MERGE_PATCH });
}

function refOf(mapper: RestMapper, obj: ManifestObject) {
  const namespaced = mapper.isNamespaced(obj.apiVersion, obj.kind);
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    namespace: namespaced ? obj.metadata.namespace || 'default' : undefined,
    name: obj.metadata.name,
  };
}

function resourceVersionOf(o: Json): string {
  return isJson(o.metadata) && typeof o.metadata.resourceVersion === 'string' ? o.metadata.resourceVersion : '';
}
